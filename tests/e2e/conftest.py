"""The e2e tier: runs against the cluster that KUBECONFIG points at, and skips cleanly without one.

The API server must reach the webhook this test starts on this machine: set ``E2E_WEBHOOK_HOST`` to an
address of this machine that the cluster can reach (for kind: the docker bridge gateway, e.g. 172.18.0.1).
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def kube():
    if not os.environ.get("KUBECONFIG"):
        pytest.skip("no cluster: KUBECONFIG is not set")
    from webhook.state.kube import KubeApi, load_api_client

    try:
        api = KubeApi(load_api_client(os.environ["KUBECONFIG"]), request_timeout=5)
        api.get("/version")
    except Exception as err:  # unreachable or misconfigured: say so and skip
        pytest.skip(f"cluster in KUBECONFIG not reachable: {err}")
    return api
