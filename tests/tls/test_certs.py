"""Certificate generation, inspection, the trust check, and the ``certs`` command."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from webhook.cli import main as webhook_main
from webhook.tls import certs
from webhook.tls.tool import main as certs_main

NOW = dt.datetime.now(dt.UTC)
HOST = "dynatrace-webhook.dynatrace.svc"


@pytest.fixture(scope="module")
def ca() -> certs.KeyPair:
    return certs.generate_ca()


@pytest.fixture(scope="module")
def serving(ca) -> certs.KeyPair:
    return certs.generate_serving(
        ca, certs.serving_names("dynatrace-webhook", "dynatrace", ["10.0.0.7", "*.hooks.example.com"])
    )


@pytest.mark.parametrize(
    ("extra", "expected_tail"),
    [
        ((), []),
        (("webhook.example.com", "10.0.0.7"), ["webhook.example.com", "10.0.0.7"]),
        ((" dynatrace-webhook.dynatrace.svc ", "", "a.example.com", "a.example.com"), ["a.example.com"]),
    ],
)
def test_serving_names_cover_the_service_then_extra_names_without_duplicates(extra, expected_tail):
    assert certs.serving_names("dynatrace-webhook", "dynatrace", extra) == [
        "dynatrace-webhook",
        "dynatrace-webhook.dynatrace",
        "dynatrace-webhook.dynatrace.svc",
        "dynatrace-webhook.dynatrace.svc.cluster.local",
        *expected_tail,
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("365d", 365 * 86400),
        ("12h", 43200),
        ("30m", 1800),
        ("10s", 10),
        ("250ms", 0.25),
        ("1h30m", 5400),
        ("90", 90),
        ("1.5d", 129600),
        (" 2H ", 7200),
    ],
)
def test_parse_duration(text, seconds):
    assert certs.parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not understood"),
        ("soon", "not understood"),
        ("5y", "not understood"),
        ("1h x", "not understood"),
        ("0s", "longer than zero"),
    ],
)
def test_parse_duration_rejects_with_a_hint(text, message):
    with pytest.raises(ValueError, match=message):
        certs.parse_duration(text)


def test_generated_certificates_are_ecdsa_p256_with_the_expected_shape(ca, serving):
    ca_cert, leaf = ca.cert, serving.cert
    assert ca_cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert certs.is_ca(ca_cert) and not certs.is_ca(leaf)
    assert certs.issued_by(leaf, ca_cert)
    assert certs.key_matches(serving.cert_pem, serving.key_pem)
    assert not certs.key_matches(serving.cert_pem, ca.key_pem)
    assert (ca_cert.not_valid_after_utc - ca_cert.not_valid_before_utc) == dt.timedelta(days=365, minutes=5)
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc) == dt.timedelta(days=7, minutes=5)
    assert certs.san_names(leaf)[-2:] == ["*.hooks.example.com", "10.0.0.7"]  # DNS names, then IPs


def test_serving_certificate_never_outlives_its_ca():
    short = certs.generate_ca(validity=dt.timedelta(days=2))
    leaf = certs.generate_serving(short, ["x"], dt.timedelta(days=7)).cert
    assert leaf.not_valid_after_utc == short.cert.not_valid_after_utc
    with pytest.raises(ValueError, match="at least one"):
        certs.generate_serving(short, [])


def test_trust_problems(ca, serving):
    other = certs.generate_ca()  # same name, different key
    old_and_new = other.cert_pem + ca.cert_pem
    expired_ca = certs.generate_ca(validity=dt.timedelta(days=1), now=NOW - dt.timedelta(days=3))
    leaf_of_expired = certs.generate_serving(
        expired_ca, [HOST], dt.timedelta(days=7), now=NOW - dt.timedelta(days=3)
    )
    cases = [
        (ca.cert_pem, serving.cert_pem, HOST, NOW, []),
        (ca.cert_pem, serving.cert_pem, "10.0.0.7", NOW, []),
        (ca.cert_pem, serving.cert_pem, "a.hooks.example.com", NOW, []),
        (old_and_new, serving.cert_pem, HOST, NOW, []),
        (base64.b64encode(ca.cert_pem), serving.cert_pem, HOST, NOW, None),  # base64 is decoded by the caller
        (
            ca.cert_pem,
            serving.cert_pem,
            "b.a.hooks.example.com",
            NOW,
            ["not valid for 'b.a.hooks.example.com'"],
        ),
        (ca.cert_pem, serving.cert_pem, "10.0.0.8", NOW, ["not valid for '10.0.0.8'"]),
        (other.cert_pem, serving.cert_pem, HOST, NOW, ["none has the key that signed it"]),
        (ca.cert_pem, serving.cert_pem, HOST, NOW + dt.timedelta(days=8), ["expired at"]),
        (
            ca.cert_pem,
            serving.cert_pem,
            HOST,
            NOW - dt.timedelta(hours=1),
            [
                "certificate (CN=dynatrace-webhook) is not valid before",
                "CA CN=dynatrace-webhook-ca is not valid",
            ],
        ),
        (
            expired_ca.cert_pem,
            leaf_of_expired.cert_pem,
            HOST,
            NOW,
            [
                "serving certificate (CN=dynatrace-webhook.dynatrace.svc) expired",
                "CA CN=dynatrace-webhook-ca expired",
            ],
        ),
    ]
    for bundle, cert, name, now, expected in cases:
        if expected is None:
            assert certs.trust_problems(certs.decode_bundle(bundle), cert, name, now) == []
            continue
        problems = certs.trust_problems(bundle, cert, name, now)
        assert len(problems) == len(expected), (name, problems)
        for problem, fragment in zip(problems, expected, strict=True):
            assert fragment in problem


def test_trust_problems_with_unparseable_input_raise_a_clear_error(ca):
    with pytest.raises(ValueError, match="the CA bundle holds no PEM certificate"):
        certs.trust_problems(b"hello", ca.cert_pem, HOST)


def test_describe(ca):
    now = NOW.replace(microsecond=0)  # certificates keep whole seconds
    serving = certs.generate_serving(ca, ["dynatrace-webhook"], now=now)
    info = certs.describe(serving.cert, now + dt.timedelta(days=1, hours=1))
    assert info["subject"] == "CN=dynatrace-webhook" and info["issuer"] == "CN=dynatrace-webhook-ca"
    assert info["state"] == "valid for another 5d23h" and not info["ca"]
    assert info["remaining_seconds"] == (6 * 24 - 1) * 3600
    assert certs.describe(serving.cert, now + dt.timedelta(days=9))["state"] == "expired 2d ago"
    assert certs.describe(serving.cert, now - dt.timedelta(hours=1))["state"] == "not yet valid"


def test_dev_certificates_are_reused_while_valid_and_regenerated_for_new_names(tmp_path):
    ca_path = certs.ensure_dev_certificates(tmp_path, ["localhost", "127.0.0.1"])
    first = (tmp_path / "tls.crt").read_bytes()
    assert certs.ensure_dev_certificates(tmp_path, ["localhost"]) == ca_path
    assert (tmp_path / "tls.crt").read_bytes() == first
    certs.ensure_dev_certificates(tmp_path, ["localhost", "::1"])
    assert (tmp_path / "tls.crt").read_bytes() != first
    assert certs.trust_problems(ca_path.read_bytes(), (tmp_path / "tls.crt").read_bytes(), "::1") == []


# --- the command ---
def test_generate_show_verify(tmp_path, capsys):
    out = tmp_path / "certs"
    rc = certs_main(
        ["generate", "--out", str(out), "--service", "hook", "--namespace", "ops", "--extra-san", "10.1.1.1"]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "hook.ops.svc.cluster.local" in printed
    assert {p.name for p in out.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    assert (out / "ca.key").stat().st_mode & 0o777 == 0o600 and (
        out / "tls.key"
    ).stat().st_mode & 0o777 == 0o600
    bundle_b64 = printed.split("caBundle: ")[1].strip()
    assert base64.b64decode(bundle_b64) == (out / "ca.crt").read_bytes()

    assert certs_main(["show", str(out / "tls.crt"), str(out / "ca.crt")]) == 0
    shown = capsys.readouterr().out
    assert "names:     hook, hook.ops, hook.ops.svc, hook.ops.svc.cluster.local, 10.1.1.1" in shown
    assert (
        "issuer:    CN=dynatrace-webhook-ca  (self-signed)" in shown
        and "remaining: valid for another 6d23h" in shown
    )
    assert certs_main(["show", "--json", str(out / "tls.crt")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["sans"][-1] == "10.1.1.1"

    (tmp_path / "bundle.b64").write_text(bundle_b64 + "\n")
    for bundle in (out / "ca.crt", tmp_path / "bundle.b64"):
        assert (
            certs_main(
                [
                    "verify",
                    "--ca-bundle",
                    str(bundle),
                    "--cert",
                    str(out / "tls.crt"),
                    "--name",
                    "hook.ops.svc",
                ]
            )
            == 0
        )
        assert capsys.readouterr().out.startswith("trusted:")
    assert (
        certs_main(
            [
                "verify",
                "--ca-bundle",
                str(out / "ca.crt"),
                "--cert",
                str(out / "tls.crt"),
                "--name",
                "other.svc",
            ]
        )
        == 1
    )
    assert "NOT TRUSTED" in capsys.readouterr().out

    # again into the same folder: refused unless --force
    assert certs_main(["generate", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert certs_main(["generate", "--out", str(out), "--force"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "/nonexistent/tls.crt"], "cannot read certificate file '/nonexistent/tls.crt'"),
        (["verify", "--ca-bundle", "{key}", "--cert", "{cert}", "--name", "x"], "holds no PEM certificate"),
        (["generate", "--out", "{dir}/x", "--cert-validity", "400d"], "cannot outlive its CA"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, argv, message):
    certs_main(["generate", "--out", str(tmp_path)])
    capsys.readouterr()
    fill = {"key": str(tmp_path / "tls.key"), "cert": str(tmp_path / "tls.crt"), "dir": str(tmp_path)}
    assert certs_main([a.format(**fill) for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_webhook_command_delegates_to_the_certs_tool(tmp_path, capsys):
    assert webhook_main(["certs", "generate", "--out", str(tmp_path)]) == 0
    assert (
        webhook_main(
            [
                "certs",
                "verify",
                "--ca-bundle",
                str(tmp_path / "ca.crt"),
                "--cert",
                str(tmp_path / "tls.crt"),
                "--name",
                HOST,
            ]
        )
        == 0
    )
    assert "trusted:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        webhook_main(["certs", "--help"])
    assert "usage: dynatrace-webhook certs" in capsys.readouterr().out


# --- packaging: the tool lives in webhook.tls; no top-level package "certs" ---
def test_the_distribution_installs_no_top_level_certs_package(tmp_path):
    dist = importlib.metadata.distribution("dynatrace-webhook")
    top_level = (dist.read_text("top_level.txt") or "").split()
    assert top_level == ["webhook"], "reinstall (pip install -e .) after changing the packages"
    assert not [f for f in dist.files or () if str(f).startswith("certs/")]
    # from another folder than the checkout (whose certs/ folder the current directory would expose)
    probe = (
        "import importlib.util as u; print(u.find_spec('certs'), u.find_spec('webhook.tls.tool') is not None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["None", "True"]


def test_the_secret_mode_script_makes_a_secret_and_chart_values(tmp_path):
    script = Path(__file__).resolve().parents[2] / "certs" / "secret-mode.sh"
    env = {**os.environ, "DYNATRACE_WEBHOOK_CERTS": f"{sys.executable} -m webhook.tls.tool"}
    out = tmp_path / "out"
    argv = ["bash", str(script), "--service", "hook", "--namespace", "ns", "--out", str(out)]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    secret = yaml.safe_load((out / "secret.yaml").read_text())
    assert (secret["type"], secret["metadata"]) == (
        "kubernetes.io/tls",
        {"name": "hook-tls", "namespace": "ns"},
    )
    assert base64.b64decode(secret["data"]["tls.crt"]) == (out / "tls.crt").read_bytes()
    assert base64.b64decode(secret["data"]["tls.key"]) == (out / "tls.key").read_bytes()
    values = yaml.safe_load((out / "values.yaml").read_text())["certificates"]
    assert values["mode"] == "secret" and values["secret"]["name"] == "hook-tls"
    bundle = base64.b64decode(values["secret"]["caBundle"])
    assert bundle == (out / "ca.crt").read_bytes()
    assert not certs.trust_problems(bundle, (out / "tls.crt").read_bytes(), "hook.ns.svc")
    leaf = certs.load_certificates((out / "tls.crt").read_bytes())[0]
    assert certs.remaining(leaf) > dt.timedelta(days=360)
    # again without --force: the tool refuses to replace the files
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 2 and "--force" in again.stderr
