"""The v1.10 contract's Secrets on first need: a pod whose namespace lacks ``dynatrace-bootstrapper-config``
(and, when the DynaKube needs certificates, ``dynatrace-bootstrapper-certs``) gets them replicated from the
operator's ``<dynakube>-bootstrapper-config`` / ``-certs`` the cache holds, once (single flight), and is
injected; without the source in the cache it is admitted with ``NoBootstrapperConfig``, with no request sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import make_dynakube, make_pod
from tests.provision.test_first_need import World, b64, injected, run
from webhook.mutation import bootstrapper as bs
from webhook.state import secrets as secret_cache
from webhook.state.store import DYNAKUBES, SECRETS

SOURCE = {
    "metadata": {
        "name": "dk-bootstrapper-config",
        "namespace": "dynatrace",
        "labels": {
            "app.kubernetes.io/name": "dynatrace-operator",
            "app.kubernetes.io/component": "injection",
        },
        "managedFields": [{"manager": "operator"}],
    },
    "data": {"ruxitagentproc.json": b64("{}"), "endpoint.properties": b64("DT_METRICS_INGEST_URL=x")},
}


def v110_world(tmp_path: Any, *, source: bool = True, certs: bool = False) -> World:
    world = World(tmp_path)
    dynakube = make_dynakube()
    if certs:
        dynakube["spec"]["trustedCAs"] = "corporate-cas"
    world.store.replace(DYNAKUBES, [dynakube])
    world.webhook.admissions.injection = world.webhook.admissions.injection.__class__(
        image="init", version="1.0.0", contract="auto", images={"v1.10": "operator:v1.10.2"}
    )
    world.store.replace(secret_cache.BOOTSTRAPPER_CONFIG, [])
    world.store.replace(secret_cache.BOOTSTRAPPER_CERTS, [])
    sources = [SOURCE] if source else []
    if certs:
        sources.append({"metadata": {"name": "dk-bootstrapper-certs"}, "data": {"trusted.pem": b64("pem")}})
    # auto picks v1.10 for this DynaKube only when its operator wrote the config source
    world.store.replace(SECRETS, sources or [{"metadata": {"name": "unrelated"}, "data": {}}])
    return world


@run
async def test_the_first_pod_replicates_the_bootstrapper_config_and_is_injected(tmp_path):
    world = v110_world(tmp_path)
    answer = await world.admit()
    assert injected(answer), answer.message
    created = world.api.objects["/api/v1/namespaces/shop/secrets/" + bs.CONFIG_SECRET]
    assert created["data"] == SOURCE["data"]  # data and labels, as upstream's Replicate copies them
    assert created["metadata"]["labels"] == SOURCE["metadata"]["labels"]
    assert created["metadata"]["namespace"] == "shop" and "managedFields" not in created["metadata"]
    assert world.counted == [("created", bs.CONFIG_SECRET)]
    assert world.api.creates() == 1


@run
async def test_certs_are_replicated_too_when_the_dynakube_needs_them(tmp_path):
    world = v110_world(tmp_path, certs=True)
    answer = await world.admit()
    assert injected(answer), answer.message
    assert world.api.objects["/api/v1/namespaces/shop/secrets/" + bs.CERTS_SECRET]["data"] == {
        "trusted.pem": b64("pem")
    }
    assert sorted(name for _, name in world.counted) == [bs.CERTS_SECRET, bs.CONFIG_SECRET]


@run
async def test_pods_arriving_together_share_one_create(tmp_path):
    world = v110_world(tmp_path)
    answers = await asyncio.gather(*(world.admit(make_pod()) for _ in range(5)))
    assert all(injected(a) for a in answers)
    assert world.api.creates() == 1


@run
async def test_without_the_source_the_contract_is_v1_4(tmp_path):
    """auto: no <dk>-bootstrapper-config in the DynaKube's namespace means the v1.4 contract."""
    world = v110_world(tmp_path, source=False)
    answer = await world.admit()
    assert injected(answer), answer.message
    assert bs.CONFIG_SECRET not in str(world.api.objects)


@run
async def test_v1_10_forced_without_a_source_is_no_bootstrapper_config_and_no_request(tmp_path):
    world = v110_world(tmp_path, source=False)
    world.first_need.config = world.first_need.config.__class__(contract="v1.10")
    world.webhook.admissions.injection = world.webhook.admissions.injection.__class__(
        image="init", version="1.0.0", contract="v1.10", images={"v1.10": "operator:v1.10.2"}
    )
    answer = await world.admit()
    assert answer.reasons == (bs.REASON_NO_BOOTSTRAPPER_CONFIG,)
    assert world.api.creates() == 0
    assert world.counted == [("inputs-missing", bs.CONFIG_SECRET)]
