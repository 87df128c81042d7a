"""Init Secrets on first need: an admission that finds its namespace's init Secret missing creates it, once.

Driven through ``Webhook._inject`` (the route the admission app calls) with ``FirstNeed`` on the in-memory
API, so the single flight, the budget, 409, failures and their backoff are seen as a pod's answer.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import pytest

from tests.conftest import make_dynakube, make_namespace, make_pod, make_review
from tests.support.fakeapi import FakeApi
from webhook.admission.review import Answer, Review, decode
from webhook.config import Settings
from webhook.controllers.initsecrets import Config as ControllerConfig
from webhook.controllers.initsecrets import InitSecrets
from webhook.kube.api import ApiError
from webhook.mutation import initsecrets as gen
from webhook.mutation import pod as pods
from webhook.provision import flights as fl
from webhook.provision.initsecrets import BACKOFF, NO_INPUTS, TIMEOUT, Config, FirstNeed
from webhook.server import Webhook
from webhook.state import secrets as secret_cache
from webhook.state.store import DYNAKUBES, NAMESPACES

CONFIG = gen.CONFIG_SECRET
ENDPOINT = gen.ENDPOINT_SECRET


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SlowApi(FakeApi):
    """The in-memory API whose creates wait for ``gate`` (when set) and can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: threading.Event | None = None
        self.fail: ApiError | None = None
        self.entered = threading.Event()

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        if self.fail is not None:
            with self.lock:
                self.calls.append(("POST", path))
            raise self.fail
        return super().create(path, body)

    def creates(self, namespace: str = "shop") -> int:
        return sum(1 for call in self.calls if call == ("POST", f"/api/v1/namespaces/{namespace}/secrets"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A webhook whose cache holds the DynaKube, its tokens and the mapped namespace, but no init Secret."""

    def __init__(self, tmp_path: Any, *, budget: float = 1.0, enrichment: bool = False, tokens: bool = True):
        self.api = SlowApi()
        self.clock = Clock()
        self.webhook = Webhook(Settings(certs_dir=tmp_path))
        self.store = self.webhook.store
        dynakube = make_dynakube()
        if enrichment:
            dynakube["spec"]["metadataEnrichment"] = {"enabled": True}
        self.store.replace(DYNAKUBES, [dynakube])
        self.store.replace(NAMESPACES, [make_namespace()])
        self.store.init_secret_cache.track()
        self.store.replace(secret_cache.INIT_CONFIG, [])
        self.store.replace(secret_cache.INIT_ENDPOINT, [])
        secrets = [
            {"metadata": {"name": "dk"}, "data": {"apiToken": b64("api"), "dataIngestToken": b64("in")}}
        ]
        self.store.replace(secret_cache.INPUT_SECRETS, secrets if tokens else [])
        self.store.replace(secret_cache.INPUT_CONFIGMAPS, [])
        self.flights = fl.Flights(clock=self.clock)
        self.counted: list[tuple[str, str]] = []
        self.first_need = FirstNeed(
            self.api,
            self.store,
            Config(budget=budget),
            self.flights,
            on_result=lambda result, name: self.counted.append((result, name)),
        )
        self.webhook.admissions.first_need = self.first_need
        self.webhook.admissions.watching = (
            True  # the cache is fed by watches: a namespace it lacks is on its way
        )

    def controller(self) -> InitSecrets:
        """This replica's initsecrets controller, sharing the admissions' flights."""
        controller = InitSecrets(
            self.api, self.store, ControllerConfig(), clock=self.clock, flights=self.flights
        )
        controller.start(thread=False)  # as the Manager does on winning the Lease; the test drives the loop
        return controller

    def namespace_arrives(self, name: str) -> None:
        """The namespace watch delivers ``name`` (as the reflector does: the Store first, then the event)."""
        obj = make_namespace(name)
        self.store.upsert(NAMESPACES, obj)
        self.webhook._watch_event(NAMESPACES, "ADDED", obj)

    async def admit(self, pod: dict[str, Any] | None = None, **review: Any) -> Answer:
        answer = self.webhook.admissions.inject(review_of(pod or make_pod(), **review))
        return answer if isinstance(answer, Answer) else await answer

    def secret_arrives(self, name: str = CONFIG, namespace: str = "shop") -> None:
        """The watch delivers the Secret the API now holds."""
        obj = self.api.objects[f"/api/v1/namespaces/{namespace}/secrets/{name}"]
        resource = secret_cache.INIT_CONFIG if name == CONFIG else secret_cache.INIT_ENDPOINT
        self.store.upsert(resource, obj)


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test run on a fresh event loop (the admission path runs on one)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kw: Any) -> None:
        asyncio.run(test(*args, **kw))

    return wrapper


def review_of(pod: dict[str, Any], **kw: Any) -> Review:
    return decode(orjson.dumps(make_review(pod, **kw)))


def injected(answer: Answer) -> bool:
    return answer.outcome == pods.INJECTED


@run
async def test_the_first_pod_creates_the_missing_secret_and_is_injected(tmp_path):
    world = World(tmp_path)
    answer = await world.admit()
    assert injected(answer), answer.message
    assert "MissingInitSecret" not in answer.reasons
    created = world.api.objects["/api/v1/namespaces/shop/secrets/" + CONFIG]
    # exactly what the controller would write: the one generator and its labels
    inputs = gen.Inputs(
        world.store.dynakube("dk") or {}, secrets=world.store.inputs.secrets, config_maps={}, csi_mode=True
    )
    expected = gen.build(CONFIG, inputs, "shop")
    assert created["data"] == expected["data"]
    assert created["metadata"]["labels"] == expected["metadata"]["labels"]
    assert created["metadata"]["labels"][gen.LABEL_MANAGED_BY] == gen.MANAGED_BY
    assert created["metadata"]["annotations"] == {
        **expected["metadata"]["annotations"],
        gen.ANNOTATION_INSTALLATION: "dynatrace",  # the installation that wrote it: the webhook's namespace
    }
    assert world.counted == [("created", CONFIG)]


@run
async def test_twenty_pods_at_once_send_one_create(tmp_path):
    world = World(tmp_path)
    world.api.gate = threading.Event()
    admissions = [asyncio.ensure_future(world.admit()) for _ in range(20)]
    await asyncio.to_thread(world.api.entered.wait, 5)
    await asyncio.sleep(0)  # every admission has reached the flight
    world.api.gate.set()
    answers = await asyncio.gather(*admissions)
    assert all(injected(a) for a in answers), [a.reasons for a in answers]
    assert world.api.creates() == 1
    # the next pod, before the watch brings the Secret, sends nothing either
    assert injected(await world.admit())
    assert world.api.creates() == 1


@run
async def test_both_secrets_are_created_when_enrichment_is_on(tmp_path):
    world = World(tmp_path, enrichment=True)
    answer = await world.admit()
    assert injected(answer) and answer.reasons == ()
    assert world.api.creates() == 2
    assert sorted(world.counted) == [("created", CONFIG), ("created", ENDPOINT)]


@run
async def test_409_means_it_is_there(tmp_path):
    world = World(tmp_path)
    world.api.seed("/api/v1/namespaces/shop/secrets", {"metadata": {"name": CONFIG, "namespace": "shop"}})
    answer = await world.admit()
    assert injected(answer)
    assert world.counted == [("exists", CONFIG)]


@run
async def test_a_refused_create_admits_with_the_reason_and_backs_off(tmp_path):
    world = World(tmp_path)
    world.api.fail = ApiError(403, "exceeded quota: secrets, requested: count/secrets=1, used: 0, limited: 0")
    answer = await world.admit()
    assert answer.outcome == pods.SKIPPED and answer.reasons == ("MissingInitSecret",)
    assert world.api.creates() == 1
    # within the backoff no create is sent, the pod is admitted at once with the reason
    answer = await world.admit()
    assert answer.reasons == ("MissingInitSecret",)
    assert world.api.creates() == 1
    assert world.counted == [("failed", CONFIG), (BACKOFF, CONFIG)]
    world.clock.now += 5.0  # the backoff has passed: the next pod tries again, and succeeds
    world.api.fail = None
    assert injected(await world.admit())
    assert world.api.creates() == 2


@run
async def test_no_answer_within_the_budget_admits_at_once_and_the_create_goes_on(tmp_path):
    world = World(tmp_path, budget=0.05)
    world.api.gate = threading.Event()
    answer = await world.admit()
    assert answer.reasons == ("MissingInitSecret",)
    assert (TIMEOUT, CONFIG) in world.counted
    world.api.gate.set()
    for _ in range(200):  # the create lands in its thread: wait for its signal, not a clock
        if ("created", CONFIG) in world.counted:
            break
        await asyncio.to_thread(world.api.entered.wait, 0.01)
    assert ("created", CONFIG) in world.counted
    assert injected(await world.admit())
    assert world.api.creates() == 1


@run
async def test_missing_inputs_send_nothing(tmp_path):
    world = World(tmp_path, tokens=False)
    answer = await world.admit()
    assert answer.reasons == ("MissingInitSecret",)
    assert world.api.creates() == 0
    assert world.counted == [(NO_INPUTS, CONFIG)]


@run
async def test_dry_run_creates_nothing(tmp_path):
    world = World(tmp_path)
    answer = await world.admit(dryRun=True)
    assert answer.reasons == ("MissingInitSecret",)
    assert world.api.creates() == 0


@run
async def test_a_pod_whose_secret_is_cached_is_answered_without_waiting(tmp_path):
    world = World(tmp_path)
    world.store.upsert(
        secret_cache.INIT_CONFIG, {"metadata": {"name": CONFIG, "namespace": "shop", "resourceVersion": "1"}}
    )
    answer = world.webhook.admissions.inject(review_of(make_pod()))
    assert isinstance(answer, Answer) and injected(answer)  # synchronous: no await, no create
    assert world.api.creates() == 0


@run
async def test_created_names_count_until_the_cache_shows_them(tmp_path):
    world = World(tmp_path)
    assert injected(await world.admit())
    assert world.first_need.known("shop") == {CONFIG}
    world.secret_arrives()
    assert world.first_need.known("shop") == frozenset()
    assert world.flights._present == {}


@pytest.mark.parametrize("first", ["admission", "controller"])
@run
async def test_the_controller_and_the_admissions_share_one_create(tmp_path, first):
    """The controller reacts to the namespace's event at once; an admission arriving meanwhile waits on its
    create instead of sending another (and the other way round)."""
    world = World(tmp_path)
    controller = world.controller()
    assert controller.leader
    world.api.gate = threading.Event()
    if first == "admission":
        admission = asyncio.ensure_future(world.admit())
        await asyncio.to_thread(world.api.entered.wait, 5)
        # the admission's create is in flight: the controller sends nothing, it waits for that create's outcome
        reconcile = asyncio.ensure_future(asyncio.to_thread(controller.reconcile, "shop"))
        world.api.gate.set()
        assert injected(await admission)
        await reconcile
    else:
        reconcile = asyncio.ensure_future(asyncio.to_thread(controller.reconcile, "shop"))
        await asyncio.to_thread(world.api.entered.wait, 5)
        admission = asyncio.ensure_future(world.admit())
        await asyncio.sleep(0.01)
        world.api.gate.set()
        await reconcile
        assert injected(await admission)
    assert world.api.creates() == 1
    controller.reconcile("shop")  # created, not cached yet: still nothing sent
    assert world.api.creates() == 1


def test_the_namespace_event_queues_that_namespace_at_once(tmp_path):
    world = World(tmp_path)
    controller = world.controller()
    controller.process()  # the first pass after winning the Lease
    creates = world.api.creates()
    world.store.replace(NAMESPACES, [make_namespace(), make_namespace("fresh")])
    controller.on_event(NAMESPACES, "ADDED", make_namespace("fresh"))
    queued = controller.loop.queued()
    assert queued["fresh"] == world.clock() and queued[""] > world.clock()  # at once; the pass at resync
    controller.process()
    assert world.api.creates("fresh") == 1
    assert world.api.creates() == creates


@run
async def test_a_pod_arriving_before_its_namespaces_watch_event_waits_for_it(tmp_path):
    world = World(tmp_path)
    world.webhook.admissions.loop = asyncio.get_running_loop()
    pod = make_pod(namespace="fresh")
    admission = asyncio.ensure_future(world.admit(pod, namespace="fresh"))
    await asyncio.sleep(0)
    assert not admission.done()  # waiting for the namespace, not answered NamespaceUnknown
    await asyncio.to_thread(world.namespace_arrives, "fresh")  # from the watch thread
    answer = await asyncio.wait_for(admission, 2)
    assert injected(answer), answer.reasons
    assert world.api.creates("fresh") == 1


@run
async def test_a_namespace_that_never_arrives_is_answered_within_the_budget(tmp_path):
    world = World(tmp_path, budget=0.05)
    world.webhook.admissions.loop = asyncio.get_running_loop()
    world.webhook.admissions.settings = Settings(certs_dir=tmp_path, init_secret_timeout=0.05)
    answer = await world.admit(make_pod(namespace="nowhere"), namespace="nowhere")
    assert answer.reasons == (pods.SKIP_NAMESPACE_UNKNOWN,)
    assert world.webhook.admissions.waiters == {}


def test_with_a_state_file_an_unknown_namespace_is_answered_at_once(tmp_path):
    world = World(tmp_path)
    world.webhook.admissions.watching = False
    answer = world.webhook.admissions.inject(review_of(make_pod(namespace="nowhere"), namespace="nowhere"))
    assert isinstance(answer, Answer) and answer.reasons == (pods.SKIP_NAMESPACE_UNKNOWN,)


def test_an_admission_create_that_fails_fails_the_controllers_reconcile_too(tmp_path):
    """The controller finding an admission's create in flight takes its outcome: a refused create is the
    controller's failure as well, retried with the namespace's backoff (never taken for done)."""
    from webhook.controllers.initsecrets import WriteFailed

    world = World(tmp_path)
    controller = world.controller()
    world.api.fail = ApiError(403, "exceeded quota")  # the quota is still there for any create
    key = ("shop", CONFIG)
    future, ours = world.flights.start(key)  # an admission's create, in flight
    assert ours
    outcome: list[BaseException | None] = []

    def reconcile() -> None:
        try:
            controller.reconcile("shop")
            outcome.append(None)
        except WriteFailed as err:
            outcome.append(err)

    thread = threading.Thread(target=reconcile)
    thread.start()
    world.flights.finish(key, future, fl.FAILED)  # refused
    thread.join(15)
    assert len(outcome) == 1 and isinstance(outcome[0], WriteFailed)
    # whether it waited on the admission's create or sent its own after it: never more than one
    assert world.api.creates() <= 1
