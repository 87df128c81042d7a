"""The tokens Secret a DynaKube names (``spec.tokens``, default its own name): the init Secrets are generated
from it, and a pod is injected only once its namespace has ``dynatrace-dynakube-config``."""

from __future__ import annotations

import base64
from typing import Any

from tests.e2e.helpers import HOSTS, NAMESPACES, RUN_LABEL, dynakube_body, dynakube_status, dynakubes_path

API_TOKEN = "e2e-api-token"


def create_tokens(cleanup: Any, namespace: str, dynakube: str, run: str) -> None:
    """Create the tokens Secret of ``dynakube`` in ``namespace`` (deleted at teardown)."""
    cleanup.create(
        f"{NAMESPACES}/{namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": dynakube, "labels": {RUN_LABEL: run}},
            "data": {"apiToken": base64.b64encode(API_TOKEN.encode()).decode()},
        },
    )


def dynakube_with_tokens(kube: Any, cleanup: Any, namespace: str, name: str, run: str, **body: Any) -> None:
    """A DynaKube with complete connection info and its tokens Secret, as a user and the operator leave them."""
    create_tokens(cleanup, namespace, name, run)
    cleanup.create(dynakubes_path(namespace), dynakube_body(name, namespace, run, **body))
    kube.patch(f"{dynakubes_path(namespace)}/{name}/status", dynakube_status(HOSTS))
