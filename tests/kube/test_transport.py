"""Which transport a configuration gets: the direct one for the service account and the usual kubeconfigs, the
official client for anything else; the service account's token read again as it rotates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from webhook.kube import transport
from webhook.kube.transport import Direct, FileToken, Official, connect, from_kubeconfig, in_cluster


def kubeconfig(path: Path, user: dict, cluster: dict | None = None) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": cluster or {"server": "http://127.0.0.1:1"}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


def test_a_token_kubeconfig_is_served_directly(tmp_path: Path) -> None:
    direct = from_kubeconfig(kubeconfig(tmp_path / "config", {"token": "abc"}))
    assert isinstance(direct, Direct)
    assert direct.host == "http://127.0.0.1:1"
    assert direct.token is not None and direct.token() == "Bearer abc"


def test_client_certificate_data_is_written_to_files_for_tls(tmp_path: Path) -> None:
    user = {"client-certificate-data": "Y2VydA==", "client-key-data": "a2V5"}
    cluster = {"server": "https://127.0.0.1:1", "certificate-authority": "ca.crt", "tls-server-name": "api"}
    direct = from_kubeconfig(kubeconfig(tmp_path / "config", user, cluster))
    assert isinstance(direct, Direct)
    tls = direct.pool.connection_pool_kw
    assert Path(tls["cert_file"]).read_bytes() == b"cert" and Path(tls["key_file"]).read_bytes() == b"key"
    assert tls["ca_certs"] == str(tmp_path / "ca.crt")  # relative to the kubeconfig, as kubectl reads it
    assert (tls["cert_reqs"], tls["server_hostname"]) == ("CERT_REQUIRED", "api")


@pytest.mark.parametrize(
    ("user", "cluster"),
    [
        ({"exec": {"command": "get-token"}}, None),
        ({"auth-provider": {"name": "oidc"}}, None),
        ({"token": "abc"}, {"server": "https://127.0.0.1:1", "proxy-url": "http://proxy:3128"}),
    ],
)
def test_anything_else_is_left_to_the_official_client(
    tmp_path: Path, user: dict, cluster: dict | None
) -> None:
    assert from_kubeconfig(kubeconfig(tmp_path / "config", user, cluster)) is None


def test_a_proxy_in_the_environment_goes_to_the_official_client(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "config", {"token": "abc"})
    chosen = connect(str(config), {"HTTPS_PROXY": "http://proxy:3128"})
    assert isinstance(chosen, Official)
    assert isinstance(connect(str(config), {}), Direct)


def test_in_cluster_reads_the_service_account_and_its_rotated_token(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "token").write_text("one")
    (tmp_path / "ca.crt").write_text("ca")
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    direct = in_cluster(env, tmp_path)
    assert isinstance(direct, Direct) and direct.host == "https://[fd00::1]:443"
    assert in_cluster({}, tmp_path) is None
    token = FileToken(tmp_path / "token", reread=60.0)
    now = [1000.0]
    monkeypatch.setattr(transport.time, "monotonic", lambda: now[0])
    assert token() == "Bearer one"
    (tmp_path / "token").write_text("two")
    assert token() == "Bearer one"  # within the minute: the token read last
    now[0] += 61
    assert token() == "Bearer two"


def test_the_direct_transport_does_not_import_the_official_client(tmp_path: Path) -> None:
    import subprocess

    config = kubeconfig(tmp_path / "config", {"token": "abc"})
    code = (
        "import sys; from webhook.kube.client import KubeApi, load_api_client; "
        f"KubeApi(load_api_client({str(config)!r})); print('kubernetes' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""}
    )
    assert out.stdout.strip() == "False"
