"""The OTLP exporter's Secrets on first need: a pod selected for the OTLP exporter whose namespace lacks
``dynatrace-otlp-exporter-config`` gets it replicated from the operator's ``<dynakube>-otlp-exporter-config``
the cache holds (its ``dataIngestToken`` only), once, and is configured; without the source it is annotated
``NoOTLPExporterConfigSecret`` and the injection stays, with no request for it sent."""

from __future__ import annotations

from typing import Any

from tests.provision.test_first_need import b64, injected, run
from tests.provision.test_first_need_bootstrapper import SOURCE, v110_world
from webhook.mutation import otlp
from webhook.state import secrets as secret_cache
from webhook.state.kinds import secret_transform
from webhook.state.store import DYNAKUBES, SECRETS

OTLP_SOURCE = {
    "metadata": {"name": "dk-otlp-exporter-config", "namespace": "dynatrace", "labels": {"app": "otlp"}},
    "data": {"dataIngestToken": b64("dt0c01.token"), "other": b64("not needed")},
}


def otlp_world(tmp_path: Any, *, source: bool = True) -> Any:
    world = v110_world(tmp_path)
    dynakube = world.store.dynakube("dk")
    dynakube = {
        **dynakube,
        "spec": {**dynakube["spec"], "otlpExporterConfiguration": {"signals": {"traces": {}}}},
    }
    world.store.replace(DYNAKUBES, [dynakube])
    world.store.replace(secret_cache.OTLP_CONFIG, [])
    world.store.replace(secret_cache.OTLP_CERTS, [])
    world.store.replace(SECRETS, [SOURCE, *([OTLP_SOURCE] if source else [])])
    return world


def test_the_cache_keeps_only_the_needed_key_of_the_sources():
    kept = secret_transform(OTLP_SOURCE)
    assert kept["data"] == {"dataIngestToken": OTLP_SOURCE["data"]["dataIngestToken"]}
    assert kept["metadata"]["labels"] == {"app": "otlp"}
    certs = secret_transform(
        {"metadata": {"name": "dk-otlp-exporter-certs"}, "data": {"activegate-tls.crt": "x", "y": "z"}}
    )
    assert certs["data"] == {"activegate-tls.crt": "x"}


@run
async def test_the_first_pod_replicates_the_otlp_exporter_config(tmp_path):
    world = otlp_world(tmp_path)
    answer = await world.admit()
    assert injected(answer), answer.message
    created = world.api.objects["/api/v1/namespaces/shop/secrets/" + otlp.CONFIG_SECRET]
    assert created["data"] == {"dataIngestToken": b64("dt0c01.token")}
    assert created["metadata"]["labels"] == {"app": "otlp"}
    assert ("created", otlp.CONFIG_SECRET) in world.counted
    assert otlp.REASON_NO_CONFIG_SECRET not in answer.reasons
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in str(answer.ops)


@run
async def test_without_the_source_the_pod_is_annotated_and_nothing_is_sent_for_it(tmp_path):
    world = otlp_world(tmp_path, source=False)
    answer = await world.admit()
    assert answer.reasons == (otlp.REASON_NO_CONFIG_SECRET,)
    assert "/spec/initContainers" in str(answer.ops)  # the injection stays
    assert otlp.CONFIG_SECRET not in str(world.api.objects)
    assert ("inputs-missing", otlp.CONFIG_SECRET) in world.counted
