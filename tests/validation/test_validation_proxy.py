"""spec.proxy (E14): Go's URL parsing, the password alphabet, and the proxy Secret read from the cache."""

from __future__ import annotations

import base64

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import (
    NS,
    make_dk,
    make_secret,
    respond,
    review_of,
    run,
    synced_store,
)
from webhook.state.store import SECRETS, Store
from webhook.validation import Context, SecretRead, proxy


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://proxy.example.com:3128", None),
        ("proxy.example.com:8080", None),  # scheme "proxy.example.com", opaque "8080"
        ("http://user:secret@proxy:3128", None),
        ("http://user:s3cr3t!#@proxy:3128", up.M14a),  # "#" starts the fragment: host "user:s3cr3t!"
        ("http://user:a!$()*-.:;@_~9Z@proxy", None),  # every allowed character that may stand raw
        ("http://u:%22%23%2F%3C%3E%3F%5B%5D%5E%7B%7C%7D@h", None),  # and the others, escaped
        ("http://u:p%20s@h", up.M14b),  # a decoded space
        ("http://u:p&s@h", up.M14b),
        ("http://u:p=s@h", up.M14b),
        ("http://u:p+s@h", up.M14b),
        ("http://u:p's@h", up.M14b),
        ("http://u:p,s@h", up.M14b),
        ("http://u:p%25s@h", up.M14b),  # a decoded percent sign
        ("http://u:p%5Cs@h", up.M14b),  # backslash
        ("http://u:p%60s@h", up.M14b),  # backtick
        ("http://u:p%C3%BC@h", up.M14b),  # non-ASCII, escaped
        ("http://u:p s@h", up.M14a),  # a raw space
        ("http://u:pü@h", up.M14a),  # raw non-ASCII
        ('http://u:p"s@h', up.M14a),
        ("http://proxy:port", up.M14a),
        ("http://proxy\n:3128", up.M14a),
        ("http://u:p%zz@h", up.M14a),
        ("", None),
    ],
)
def test_inline_value(value, message):
    assert run(proxy.invalid_proxy, make_dk(proxy={"value": value})) == message


def secrets(**data: str | None):
    def read(name: str) -> SecretRead:
        if name not in data:
            return SecretRead(error=f'secrets "{name}" not found')
        value = data[name]
        return SecretRead(data={} if value is None else {"proxy": base64.b64encode(value.encode()).decode()})

    return read


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"valueFrom": "px"}, None),
        ({"valueFrom": "bad"}, up.M14b),
        ({"valueFrom": "raw"}, up.M14a),
        ({"valueFrom": "nokey"}, up.M14c + ": missing token proxy in proxy secret nokey"),
        ({"valueFrom": "gone"}, up.M14c + ': failed to get proxy from gone secret: secrets "gone" not found'),
        ({"value": "http://proxy:3128", "valueFrom": "gone"}, None),  # the inline value wins
        ({"value": "", "valueFrom": "bad"}, up.M14b),
        ({}, None),
    ],
)
def test_value_frommake_secret(spec, message):
    ctx = Context(
        secret=secrets(px="http://u:pw@proxy:3128", bad="http://u:p&s@h", raw="http://u:p s@h", nokey=None)
    )
    assert run(proxy.invalid_proxy, make_dk(proxy=spec), ctx) == message


def test_secret_value_is_used_raw():
    ctx = Context(secret=secrets(px="http://proxy:3128\n"))  # a trailing newline makes Go's parser fail
    assert run(proxy.invalid_proxy, make_dk(proxy={"valueFrom": "px"}), ctx) == up.M14a


def test_handler_reads_the_secret_from_the_cache():
    store = synced_store(
        secrets=[make_secret("px", proxy="http://u:p&s@h", other="x"), make_secret("ok", proxy="http://h:1")]
    )
    assert store.secret("px")["data"].keys() == {"proxy"}  # nothing else of a Secret is kept
    denied = respond(review_of("CREATE", make_dk(proxy={"valueFrom": "px"})), store)
    assert denied["allowed"] is False
    assert denied["status"]["message"] == f"\n1 error(s) found in the DynaKube\n 1. {up.M14b}"
    assert respond(review_of("CREATE", make_dk(proxy={"valueFrom": "ok"})), store)["allowed"] is True
    missing = respond(review_of("CREATE", make_dk(proxy={"valueFrom": "nope"})), store)
    assert missing["status"]["message"].endswith(
        up.M14c + ': failed to get proxy from nope secret: secrets "nope" not found'
    )


def test_handler_without_a_loaded_secret_cache():
    store = Store(NS)
    response = respond(review_of("CREATE", make_dk(proxy={"valueFrom": "px"})), store)
    assert response["status"]["message"].endswith(
        up.M14c + ': failed to get proxy from px secret: secrets "px": the Secret cache is not loaded yet'
    )
    store.replace(SECRETS, [make_secret("px", proxy="http://h:1")])
    assert respond(review_of("CREATE", make_dk(proxy={"valueFrom": "px"})), store)["allowed"] is True


def test_handler_for_a_dynakube_outside_the_webhook_namespace():
    store = synced_store(secrets=[make_secret("px", proxy="http://h:1")])
    review = review_of("CREATE", make_dk(namespace="elsewhere", proxy={"valueFrom": "px"}))
    review["request"]["namespace"] = "elsewhere"
    message = respond(review, store)["status"]["message"]
    assert message.endswith(
        up.M14c
        + ': failed to get proxy from px secret: secrets "px" is forbidden: the webhook reads Secrets in '
        'namespace "dynatrace" only'
    )
