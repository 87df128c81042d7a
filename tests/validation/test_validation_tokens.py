"""v1.10.2's warnings that read the tokens Secret (key names, platform token) and the cluster's version, through
/validate with the cache as it holds them: ``deprecatedPaasToken``, ``publicRegistryFlagIgnoredForPlatformToken``,
``activeGateRollingUpdateWithOldK8sVersion`` (``pkg/api/validation/dynakube/`` at v1.10.2, exact texts)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import FF, NS, make_dk, make_secret, respond, review_of, synced_store
from webhook.state.discovery import Discovery
from webhook.state.kinds import secret_transform
from webhook.state.store import Store

TOKEN_WARNINGS = (
    up.PAAS_TOKEN_IGNORED,
    up.PAAS_TOKEN_USED,
    up.PUBLIC_REGISTRY_FLAG_IGNORED,
    up.ROLLING_UPDATE_OLD_KUBERNETES,
)
PLATFORM = "dt0s16.SAMPLE.secret"
CLASSIC = "dt0c01.SAMPLE.secret"
MEMORY = {"limits": {"memory": "1Gi"}}


def warnings_of(
    dk: dict[str, Any], secrets: list[dict[str, Any]], minor: int | None = None, namespace: str = NS
) -> list[str]:
    store = synced_store(secrets=secrets)
    store.kubernetes_minor = minor
    review = review_of("CREATE", dk, version="v1beta6")
    review["request"]["namespace"] = namespace
    answer = respond(review, store)
    assert answer["allowed"] is True, answer
    return [w for w in answer.get("warnings") or [] if w in TOKEN_WARNINGS]


def dk6(annotations: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return make_dk(version="v1beta6", annotations=annotations, **spec)


PUBLIC = {FF + "use-public-registry": "false"}  # present counts, whatever its value


@pytest.mark.parametrize(
    ("dk", "secrets", "want"),
    [
        (dk6(), [make_secret("dynakube", apiToken=CLASSIC)], []),
        (dk6(), [make_secret("dynakube", apiToken=PLATFORM)], []),
        (dk6(), [make_secret("dynakube", apiToken=CLASSIC, paasToken="p")], [up.PAAS_TOKEN_USED]),
        (dk6(), [make_secret("dynakube", apiToken=PLATFORM, paasToken="p")], [up.PAAS_TOKEN_IGNORED]),
        (dk6(), [make_secret("dynakube", paasToken="p")], [up.PAAS_TOKEN_USED]),
        (dk6(), [make_secret("dynakube", apiToken=CLASSIC, paasToken="")], []),  # an empty value is no token
        (
            dk6(tokens="mine"),
            [make_secret("mine", apiToken=PLATFORM, paasToken="p")],
            [up.PAAS_TOKEN_IGNORED],
        ),
        (dk6(tokens="mine"), [make_secret("dynakube", apiToken=PLATFORM, paasToken="p")], []),
        (dk6(), [], []),  # no tokens Secret: upstream's failed GET
        (dk6(PUBLIC), [make_secret("dynakube", apiToken=PLATFORM)], [up.PUBLIC_REGISTRY_FLAG_IGNORED]),
        (dk6(PUBLIC), [make_secret("dynakube", apiToken=CLASSIC)], []),
        (dk6(PUBLIC), [], []),
        (
            dk6(PUBLIC),
            [make_secret("dynakube", apiToken=PLATFORM, paasToken="p")],
            [up.PAAS_TOKEN_IGNORED, up.PUBLIC_REGISTRY_FLAG_IGNORED],
        ),
        (
            dk6({**PUBLIC, "x": "y"}, tokens="t"),
            [make_secret("t", apiToken="dt0s16")],
            [up.PUBLIC_REGISTRY_FLAG_IGNORED],
        ),
    ],
    ids=[
        "classic-token",
        "platform-token",
        "paas-with-classic",
        "paas-with-platform",
        "paas-without-api-token",
        "empty-paas",
        "spec-tokens",
        "spec-tokens-other-secret",
        "no-secret",
        "flag-with-platform",
        "flag-with-classic",
        "flag-without-secret",
        "both-in-upstream-order",
        "prefix-only",
    ],
)
def test_token_warnings(dk: dict[str, Any], secrets: list[dict[str, Any]], want: list[str]) -> None:
    assert warnings_of(dk, secrets) == want


def test_tokens_of_another_namespace_are_not_read() -> None:
    other = make_dk(version="v1beta6", namespace="elsewhere")
    assert (
        warnings_of(other, [make_secret("dynakube", apiToken=PLATFORM, paasToken="p")], namespace="elsewhere")
        == []
    )


def test_a_platform_token_turns_the_public_registry_on() -> None:
    """As upstream's ``IsPublicRegistry``: the override is an error without the flag, unless the token is a
    platform token."""
    override = dk6(
        oneAgent={"cloudNativeFullStack": {}}, templates={}, publicRegistryOverride="r.example.com"
    )
    for secrets, denied in (
        ([make_secret("dynakube", apiToken=CLASSIC)], True),
        ([make_secret("dynakube", apiToken=PLATFORM)], False),
    ):
        answer = respond(review_of("CREATE", override, version="v1beta6"), synced_store(secrets=secrets))
        assert (
            "publicRegistryOverride field is set" in (answer.get("status") or {}).get("message", "")
        ) is denied


@pytest.mark.parametrize(
    ("active_gate", "minor", "want"),
    [
        (
            {"capabilities": ["routing"], "resources": MEMORY, "rollingUpdate": {"maxUnavailable": 1}},
            34,
            [up.ROLLING_UPDATE_OLD_KUBERNETES],
        ),
        (
            {"capabilities": ["routing"], "resources": MEMORY, "rollingUpdate": {}},
            30,
            [up.ROLLING_UPDATE_OLD_KUBERNETES],
        ),
        ({"capabilities": ["routing"], "resources": MEMORY, "rollingUpdate": {"maxUnavailable": 1}}, 35, []),
        ({"capabilities": ["routing"], "resources": MEMORY, "rollingUpdate": {"maxUnavailable": 1}}, 36, []),
        (
            {"capabilities": ["routing"], "resources": MEMORY, "rollingUpdate": {"maxUnavailable": 1}},
            None,
            [],
        ),
        ({"capabilities": ["routing"], "resources": MEMORY, "rollingUpdate": None}, 30, []),
        ({"capabilities": ["routing"], "resources": MEMORY}, 30, []),
    ],
    ids=["minor-34", "empty-rolling-update", "minor-35", "minor-36", "unknown-version", "null", "absent"],
)
def test_rolling_update_with_old_kubernetes(
    active_gate: dict[str, Any], minor: int | None, want: list[str]
) -> None:
    assert warnings_of(dk6(activeGate=active_gate), [], minor) == want


def test_the_cache_keeps_key_names_and_the_platform_bit_never_values() -> None:
    kept = secret_transform(make_secret("dynakube", apiToken=PLATFORM, paasToken="p", dataIngestToken=""))
    assert kept["keys"] == ["apiToken", "paasToken"] and kept["platformToken"] is True
    assert kept["data"] == {}
    assert "SAMPLE" not in repr(kept) and PLATFORM not in repr(kept)
    assert (
        secret_transform({"metadata": {"name": "x"}, "data": {"apiToken": "not base64!"}})["platformToken"]
        is False
    )


class VersionApi:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.reads = 0

    def get(self, path: str) -> dict[str, Any]:
        assert path == "/version"
        self.reads += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("answers", "want"),
    [
        ([{"major": "1", "minor": "34"}], [34]),
        ([{"major": "1", "minor": "33+"}], [33]),  # providers' "33+"
        ([{"major": "1", "minor": "34"}, {"major": "1", "minor": "35"}], [34, 35]),
        ([{"major": "1", "minor": "34"}, RuntimeError("connection refused")], [34, 34]),  # keeps the last
        ([{"major": "1", "minor": ""}, {"major": "1", "minor": "35"}], [None, 35]),
    ],
    ids=["read", "plus-suffix", "refreshed", "failure-keeps-last", "unparsable-then-read"],
)
def test_the_version_is_read_at_start_and_every_five_minutes(
    answers: list[Any], want: list[int | None]
) -> None:
    now = [1000.0]
    store = Store(NS)
    api = VersionApi(*answers)
    discovery = Discovery(api, store, group_versions=(), clock=lambda: now[0])
    seen = []
    for _ in want:
        discovery.poll_version()
        discovery.poll_version()  # within the interval: no read
        seen.append(store.kubernetes_minor)
        now[0] += 300.0
    assert seen == want and api.reads == len(want)
