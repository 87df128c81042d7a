"""The init-Secrets controller against the in-memory API: create, update, foreign copies, cleanup, backoff."""

from __future__ import annotations

import base64
import json
import traceback
from typing import Any

import pytest

from tests.support.fakeapi import FakeApi
from webhook.controllers.initsecrets import Config, InitSecrets
from webhook.kube.api import ApiError
from webhook.mutation import initsecrets as gen
from webhook.state import secrets as secret_cache
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

CONFIG = "dynatrace-dynakube-config"
ENDPOINT = "dynatrace-metadata-enrichment-endpoint"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], str, str]] = []
        self.actions: list[str] = []

    def record(
        self,
        regarding: dict[str, str],
        reason: str,
        message: str,
        event_type: str = "Warning",
        *,
        action: str = "",
    ) -> bool:
        self.events.append((regarding, reason, message))
        self.actions.append(action)
        return True


def dynakube(name: str = "dk", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dynatrace.com/v1beta3",
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": "dynatrace"},
        "spec": {
            "apiUrl": "https://t.live.dynatrace.com/api",
            "oneAgent": {"applicationMonitoring": {}},
            **spec,
        },
        "status": {"oneAgent": {"connectionInfoStatus": {"tenantUUID": "t1"}}},
    }


def namespace(name: str, instance: str | None = "dk") -> dict[str, Any]:
    labels = {"dynakube.internal.dynatrace.com/instance": instance} if instance else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


class World:
    def __init__(self, namespaces: int = 1, **config: Any) -> None:
        self.api = FakeApi()
        self.clock = Clock()
        self.store = Store("dynatrace")
        self.store.init_secret_cache.track()
        self.recorder = Recorder()
        self.dynakubes = [dynakube()]
        self.namespaces = [namespace(f"app{i}") for i in range(namespaces)]
        self.tokens: dict[str, dict[str, str]] = {"dk": {"apiToken": "api-1", "dataIngestToken": "in-1"}}
        self.leading = True  # the Manager's answer: this replica holds the Lease
        self.controller = InitSecrets(
            self.api,
            self.store,
            Config(**config),
            clock=self.clock,
            leading=lambda: self.leading,
            recorder=self.recorder,
        )
        self.controller.start(
            thread=False
        )  # the Manager starts it on winning the Lease; tests drive the loop
        self.sync()

    def sync(self, notify: bool = True) -> None:
        """What the watches would deliver: the cache as the API holds it now (and, with ``notify``, the
        watch event that says something changed)."""
        self.store.replace(DYNAKUBES, self.dynakubes)
        self.store.replace(NAMESPACES, self.namespaces)
        secrets = [{"metadata": {"name": n}, "data": gen.encode(d)} for n, d in self.tokens.items()]
        self.store.replace(secret_cache.INPUT_SECRETS, secrets)
        self.store.replace(secret_cache.INPUT_CONFIGMAPS, [])
        for resource, name in secret_cache.INIT_RESOURCES.items():
            items, _, _ = self.api.list_page("/api/v1/secrets", field_selector=f"metadata.name={name}")
            self.store.replace(resource, items)
        if notify:
            self.controller.on_event("test", "MODIFIED")

    def round(self) -> None:
        """Run the loop once: a pass, then every namespace it queues (as far as due)."""
        self.controller.loop.add("")
        self.controller.process()
        self.sync(notify=False)

    def secret(self, ns: str, name: str = CONFIG) -> dict[str, Any] | None:
        return self.api.objects.get(f"/api/v1/namespaces/{ns}/secrets/{name}")

    def config(self, ns: str = "app0") -> dict[str, Any]:
        secret = self.secret(ns)
        assert secret is not None
        return json.loads(base64.b64decode(secret["data"]["config"]))

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.api.calls if c[0] in ("POST", "PUT", "DELETE") and "/secrets" in c[1]]


def test_creates_the_missing_config_secret_with_our_label() -> None:
    w = World()
    w.round()
    secret = w.secret("app0")
    assert secret is not None
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "dynatrace-webhook"
    assert w.config()["apiToken"] == "api-1"
    assert w.secret("app0", ENDPOINT) is None  # enrichment is off
    assert w.controller.counts[("created", CONFIG)] == 1
    w.api.calls.clear()
    w.round()  # level-triggered: nothing to do
    assert w.writes() == []


def test_enrichment_creates_the_endpoint_secret() -> None:
    w = World()
    w.dynakubes = [dynakube(metadataEnrichment={"enabled": True})]
    w.sync()
    w.round()
    endpoint = w.secret("app0", ENDPOINT)
    assert endpoint is not None
    assert base64.b64decode(endpoint["data"]["endpoint.properties"]).decode().endswith("API_TOKEN=in-1\n")


def test_updates_its_copy_when_inputs_change() -> None:
    w = World()
    w.round()
    w.tokens["dk"]["apiToken"] = "api-2"
    w.sync()
    w.round()
    assert w.config()["apiToken"] == "api-2"
    assert w.controller.counts[("updated", CONFIG)] == 1
    assert ("PUT", "/api/v1/namespaces/app0/secrets/dynatrace-dynakube-config") in w.api.calls


def test_leaves_a_copy_someone_else_manages_alone() -> None:
    w = World()
    operator_copy = {
        "metadata": {
            "name": CONFIG,
            "namespace": "app0",
            "labels": {"app.kubernetes.io/component": "webhook"},
        },
        "data": {"config": base64.b64encode(b'{"apiToken":"operator"}').decode()},
    }
    w.api.seed("/api/v1/namespaces/app0/secrets", operator_copy)
    w.api.calls.clear()
    w.sync()
    w.round()
    w.dynakubes = []  # even when its DynaKube goes away
    w.sync()
    w.round()
    assert w.config()["apiToken"] == "operator"
    assert w.writes() == []


def test_cleanup_follows_the_contract() -> None:
    w = World(namespaces=2)
    w.dynakubes = [dynakube(metadataEnrichment={"enabled": True})]
    w.sync()
    w.round()
    assert w.secret("app0") and w.secret("app1", ENDPOINT)
    # namespace no longer mapped while injection stays on: the Secrets stay
    w.namespaces[1] = namespace("app1", None)
    w.sync()
    w.round()
    assert w.secret("app1") and w.secret("app1", ENDPOINT)
    # enrichment off: the endpoint goes, the config stays
    w.dynakubes = [dynakube()]
    w.sync()
    w.round()
    assert w.secret("app0") and w.secret("app0", ENDPOINT) is None and w.secret("app1", ENDPOINT) is None
    # DynaKube deleted: everything of ours goes
    w.dynakubes = []
    w.sync()
    w.round()
    assert w.secret("app0") is None and w.secret("app1") is None
    assert w.controller.counts[("deleted", CONFIG)] == 2


def test_no_app_injection_mode_deletes_the_config() -> None:
    w = World()
    w.round()
    w.dynakubes = [dynakube(oneAgent={"hostMonitoring": {}})]
    w.sync()
    w.round()
    assert w.secret("app0") is None


def test_missing_inputs_fail_with_an_event_and_wait_for_a_change() -> None:
    w = World()
    w.tokens = {}
    w.sync()
    w.round()
    assert w.secret("app0") is None
    assert w.controller.counts[("failed", CONFIG)] == 1
    involved, reason, message = w.recorder.events[0]
    assert (involved["kind"], involved["name"], reason) == ("DynaKube", "dk", "InitSecretFailed")
    assert w.recorder.actions[0] == "WriteSecret"
    assert "tokens Secret 'dk' not found" in message
    w.clock.now += 5
    w.controller.process()  # no change seen: not retried blindly (the next pass is the resync's)
    assert w.controller.counts[("failed", CONFIG)] == 1
    w.tokens = {"dk": {"apiToken": "late"}}
    w.sync()  # the watch event of the tokens Secret
    w.round()
    assert w.config()["apiToken"] == "late"


def test_a_pass_over_namespaces_missing_inputs_keeps_one_short_error() -> None:
    """The input error is generated once per DynaKube and raised for every namespace: each raise starts a
    traceback of its own, so a pass over many namespaces does not chain their frames onto the one error."""
    w = World(namespaces=50)
    w.tokens = {}
    w.sync()
    w.controller.full_pass()
    (error,) = w.controller.planner._memo.values()
    assert isinstance(error, gen.InputError)
    assert error.__traceback__ is None or len(traceback.extract_tb(error.__traceback__)) < 5


def test_api_errors_back_off_then_succeed() -> None:
    w = World()
    for _ in range(2):
        w.api.script("POST", "/api/v1/namespaces/app0/secrets", ApiError(500, "boom"))
    w.round()
    assert w.controller.counts[("failed", CONFIG)] == 1
    w.round()  # within the backoff (2 s +-20 %): a new pass does not bypass it
    assert w.controller.counts[("failed", CONFIG)] == 1
    w.clock.now += 2.5
    w.round()
    assert w.controller.counts[("failed", CONFIG)] == 2
    w.clock.now += 2.5
    w.round()  # the second backoff (3.2-4.8 s) has not passed
    assert w.secret("app0") is None and w.controller.counts[("failed", CONFIG)] == 2
    w.clock.now += 2.5
    w.round()
    assert w.secret("app0") is not None
    assert w.controller.loop.failures == {}


def test_writes_are_rate_limited() -> None:
    w = World(namespaces=30, burst=20, writes_per_second=5.0)
    w.round()
    assert len(w.writes()) == 20
    w.clock.now += 1.0
    w.round()
    assert len(w.writes()) == 25


def test_only_the_leader_writes() -> None:
    w = World()
    w.leading = (
        False  # the Lease was lost: the Manager stops the controller; a reconcile under way writes nothing
    )
    w.round()
    w.controller.on_event(NAMESPACES, "ADDED", namespace("app0"))
    w.controller.process()
    assert not w.controller.leader and w.writes() == []


def test_waits_for_the_caches() -> None:
    w = World()
    fresh = Store("dynatrace")
    fresh.init_secret_cache.track()
    w.controller.store = w.controller.planner.store = fresh
    w.controller.is_synced = lambda: fresh.synced
    w.controller.loop.add("")
    w.controller.process()
    assert w.writes() == []


@pytest.mark.parametrize("terminating", [{"deletionTimestamp": "2026-01-01T00:00:00Z"}])
def test_terminating_namespaces_get_nothing(terminating: dict[str, str]) -> None:
    w = World()
    w.namespaces[0]["metadata"].update(terminating)
    w.sync()
    w.round()
    assert w.writes() == []
    # nor a cleanup: the namespace's deletion takes our copy with it (no write for each of thousands)
    w.namespaces[0]["metadata"].pop("deletionTimestamp")
    w.sync()
    w.round()
    assert w.secret("app0") is not None
    w.namespaces[0]["metadata"].update(terminating)
    w.dynakubes = []
    w.sync()
    w.round()
    assert w.secret("app0") is not None and [c for c in w.writes() if c[0] == "DELETE"] == []


def test_a_namespace_that_is_gone_ends_its_key() -> None:
    """A namespace deleted after the cache saw it (or a store that went back in time): 404 is no failure to
    retry with backoff; the key is done, and the namespace's watch event removes it from the cache."""
    w = World()
    w.api.script("POST", "/api/v1/namespaces/app0/secrets", ApiError(404, 'namespaces "app0" not found'))
    w.round()
    assert w.secret("app0") is None
    assert w.controller.loop.failures == {} and "app0" not in w.controller.loop.queued()
    assert w.controller.counts[("failed", CONFIG)] == 0


def test_a_namespace_mapped_during_a_long_pass_is_written_next() -> None:
    """A pass with a backlog of writes (rate-limited) does not hold up a namespace that was just mapped: its
    event puts it at the front of the queue."""
    w = World(namespaces=30, burst=2, writes_per_second=1.0)
    w.round()
    assert len(w.writes()) == 2
    fresh = namespace("fresh")
    w.namespaces.append(fresh)
    w.sync(notify=False)
    w.controller.on_event(NAMESPACES, "ADDED", fresh)
    w.clock.now += 1.0  # one token
    w.controller.process()
    assert w.writes()[-1] == ("POST", "/api/v1/namespaces/fresh/secrets")


def test_a_pass_queues_only_namespaces_with_something_to_write() -> None:
    w = World(namespaces=3)
    w.round()
    assert len(w.writes()) == 3
    w.controller.loop.add("")  # another pass: every copy is as the inputs give it
    w.controller.process()
    assert set(w.controller.loop.queued()) == {""} and len(w.writes()) == 3


def test_another_installations_copies_are_left_alone() -> None:
    """Two webhook installations in one cluster: a copy written by the other (its namespace in the
    installation annotation) is neither updated nor cleaned up here, even when its DynaKube is not ours."""
    w = World()
    other = gen.mark_installation(
        gen.secret_from(
            CONFIG,
            "app0",
            {**gen.labels(dynakube("elsewhere"), "webhook", ""), "x": "y"},
            {"config": "{}"},
        ),
        "other-installation",
    )
    w.api.create("/api/v1/namespaces/app0/secrets", other)
    w.dynakubes = []  # nothing of ours maps app0 now
    w.sync()
    w.round()
    assert [c for c in w.writes() if c[0] in ("PUT", "DELETE")] == []
    assert w.secret("app0")["metadata"]["annotations"][gen.ANNOTATION_INSTALLATION] == "other-installation"


def test_events_of_namespaces_with_nothing_to_write_queue_nothing() -> None:
    """A mass deletion's thousands of namespace events (or any namespace with nothing to write) neither wait in
    the queue nor take the tokens a retry needs."""
    w = World()
    w.round()
    for i in range(50):
        gone = namespace(f"gone{i}", instance=None)
        gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        w.controller.on_event(NAMESPACES, "MODIFIED", gone)
    w.controller.on_event(NAMESPACES, "MODIFIED", namespace("app0"))  # its Secret is as it should be
    assert set(w.controller.loop.queued()) == {""}
