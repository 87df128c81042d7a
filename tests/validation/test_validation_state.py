"""The cached reads /validate needs beyond DynaKubes and namespaces: Secrets (local state file, reflector
path) and Istio's API discovery, probed in the background."""

from __future__ import annotations

import base64

from webhook.kube.api import ApiError
from webhook.state.discovery import Discovery
from webhook.state.local import LocalState, parse_documents
from webhook.state.store import ISTIO_API, SECRETS, Store


class FakeDiscoveryApi:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.paths: list[str] = []

    def get(self, path):
        self.paths.append(path)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_discovery_records_served_not_served_and_keeps_the_last_answer_on_errors():
    store = Store("dynatrace")
    api = FakeDiscoveryApi(
        ApiError(500, "boom"),
        ApiError(404, "not found"),
        ApiError(503),
        {"kind": "APIResourceList"},
        OSError("down"),
    )
    discovery = Discovery(api, store)
    discovery.poll()
    assert ISTIO_API not in store.served  # unknown until an answer arrives
    discovery.poll()
    assert store.served[ISTIO_API] is False
    discovery.poll()
    assert store.served[ISTIO_API] is False  # a 503 keeps the last answer
    discovery.poll()
    assert store.served[ISTIO_API] is True
    discovery.poll()
    assert store.served[ISTIO_API] is True
    assert api.paths == ["/apis/networking.istio.io/v1beta1"] * 5


def test_discovery_thread_stops():
    store = Store("dynatrace")
    discovery = Discovery(FakeDiscoveryApi(*[ApiError(404)] * 100), store, interval=0.01)
    discovery.start()
    discovery.stop()
    assert discovery._thread is not None
    discovery._thread.join(timeout=5)
    assert not discovery._thread.is_alive()
    assert store.served.get(ISTIO_API) is False


STATE = """
kind: Secret
metadata: {name: proxy-data}
data: {proxy: aHR0cDovL3Byb3h5OjMxMjg=, token: c2VjcmV0}
---
kind: Secret
metadata: {name: proxy-string}
stringData: {proxy: "http://u:p&s@proxy"}
---
kind: Secret
metadata: {name: elsewhere, namespace: other}
stringData: {proxy: x}
"""


def test_state_file_secrets(tmp_path):
    found = parse_documents(STATE, "dynatrace")
    assert [s["metadata"]["name"] for s in found[SECRETS]] == ["proxy-data", "proxy-string"]
    path = tmp_path / "state.yaml"
    path.write_text(STATE)
    store = Store("dynatrace")
    assert LocalState(path, store).load()
    assert store.is_synced(SECRETS) and store.synced
    assert store.secret("proxy-data") == {
        "kind": "Secret",
        "metadata": {"name": "proxy-data", "namespace": "dynatrace"},
        "data": {"proxy": "aHR0cDovL3Byb3h5OjMxMjg="},
        "keys": ["proxy", "token"],
        "platformToken": False,
    }
    assert base64.b64decode(store.secret("proxy-string")["data"]["proxy"]) == b"http://u:p&s@proxy"
    assert store.secret("elsewhere") is None
