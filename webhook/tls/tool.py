"""``dynatrace-webhook certs`` (``python -m webhook.tls.tool``): generate, show and verify certificates.

- ``generate --out DIR [--service S] [--namespace N] [--extra-san NAME ...]``: a CA (``ca.crt``, ``ca.key``)
  and a serving certificate signed by it (``tls.crt``, ``tls.key``) for the Service's names.
- ``show FILE ...``: subject, SANs, issuer and remaining validity of every certificate in the files (PEM, or
  a caBundle as base64); ``-`` reads standard input.
- ``verify --ca-bundle FILE --cert FILE --name DNS``: whether a client that trusts only the bundle accepts
  the certificate for that name, as kube-apiserver checks it (chain, name, validity).

Exit codes: 0 success (verify: trusted), 1 verify found the certificate untrusted, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from webhook.tls import certs

EXIT_OK, EXIT_UNTRUSTED, EXIT_USAGE = 0, 1, 2


class InputError(Exception):
    """Input the user has to fix (missing file, no certificate in it, ...)."""


def _duration(text: str) -> dt.timedelta:
    try:
        return certs.parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _read(name: str, what: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {what} {name!r}: {err.strerror or err}") from None


def _parse(data: bytes, what: str) -> list[Any]:
    try:
        return certs.load_certificates(certs.decode_bundle(data), what)
    except ValueError as err:
        raise InputError(str(err)) from None


# --- generate ---
def cmd_generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    files = [out / n for n in (certs.CA_CERT, certs.CA_KEY, certs.TLS_CERT, certs.TLS_KEY)]
    existing = [str(f) for f in files if f.exists()]
    if existing and not args.force:
        raise InputError(f"{', '.join(existing)} already exist(s); use --force to replace, or another --out")
    names = certs.serving_names(args.service, args.namespace, args.extra_san or ())
    if args.cert_validity > args.ca_validity:
        raise InputError(
            "--cert-validity is longer than --ca-validity; the certificate cannot outlive its CA"
        )
    ca = certs.generate_ca(args.ca_name, args.ca_validity)
    serving = certs.generate_serving(ca, names, args.cert_validity)
    try:
        out.mkdir(parents=True, exist_ok=True)
        certs.write_atomic(out / certs.CA_CERT, ca.cert_pem)
        certs.write_atomic(out / certs.CA_KEY, ca.key_pem, 0o600)
        certs.write_pair(out, serving)
    except OSError as err:
        raise InputError(f"cannot write to {out}: {err.strerror or err}") from None
    print(f"wrote {', '.join(str(f) for f in files)}")
    print(f"names: {', '.join(names)}")
    print(f"caBundle: {base64.b64encode(ca.cert_pem).decode()}")
    return EXIT_OK


# --- show ---
def _show_text(info: dict[str, Any]) -> str:
    lines = [
        f"subject:   {info['subject']}",
        f"issuer:    {info['issuer']}" + ("  (self-signed)" if info["issuer"] == info["subject"] else ""),
        f"CA:        {'yes' if info['ca'] else 'no'}",
        f"names:     {', '.join(info['sans']) or '(none)'}",
        f"validity:  {info['not_before']} .. {info['not_after']}",
        f"remaining: {info['state']}",
        f"sha256:    {info['sha256']}",
    ]
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    documents = []
    for name in args.files:
        for cert in _parse(_read(name, "certificate file"), name):
            documents.append({"file": name, **certs.describe(cert, now)})
    if args.json:
        print(json.dumps(documents, indent=2))
    else:
        print("\n\n".join(f"# {d['file']}\n{_show_text(d)}" for d in documents))
    return EXIT_OK


# --- verify ---
def cmd_verify(args: argparse.Namespace) -> int:
    bundle = certs.decode_bundle(_read(args.ca_bundle, "CA bundle"))
    cert = _read(args.cert, "certificate")
    _parse(bundle, f"the CA bundle {args.ca_bundle}")
    _parse(cert, f"the certificate {args.cert}")
    problems = certs.trust_problems(bundle, cert, args.name)
    if problems:
        print(f"NOT TRUSTED: {args.cert} for {args.name!r} by the CAs in {args.ca_bundle}:")
        for problem in problems:
            print(f"  - {problem}")
        return EXIT_UNTRUSTED
    leaf = certs.load_certificates(cert)[0]
    left = certs.format_duration(certs.remaining(leaf))
    print(f"trusted: {args.cert} is valid for {args.name!r} under {args.ca_bundle} (another {left})")
    return EXIT_OK


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or "dynatrace-webhook certs",
        description="Generate, inspect and check the webhook's TLS certificates.",
        epilog="Exit codes: 0 ok/trusted, 1 not trusted, 2 bad usage or input.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    g = sub.add_parser("generate", help="write a CA and a serving certificate into a folder")
    g.add_argument("--out", required=True, help="folder for ca.crt, ca.key, tls.crt, tls.key")
    g.add_argument("--service", default="dynatrace-webhook", help="Service name (dynatrace-webhook)")
    g.add_argument("--namespace", default="dynatrace", help="Service namespace (dynatrace)")
    g.add_argument(
        "--extra-san", action="append", metavar="NAME", help="another DNS name or IP address; repeatable"
    )
    g.add_argument("--ca-name", default="dynatrace-webhook-ca", help="the CA's common name")
    g.add_argument("--ca-validity", type=_duration, default=_duration("365d"), help="CA lifetime (365d)")
    g.add_argument(
        "--cert-validity", type=_duration, default=_duration("7d"), help="serving certificate lifetime (7d)"
    )
    g.add_argument("--force", action="store_true", help="replace existing files")
    g.set_defaults(func=cmd_generate)
    s = sub.add_parser("show", help="print subject, names, issuer and remaining validity")
    s.add_argument("files", nargs="+", metavar="FILE", help="PEM file or base64 caBundle; - for stdin")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_show)
    v = sub.add_parser("verify", help="check that a caBundle trusts a serving certificate for a name")
    v.add_argument("--ca-bundle", required=True, help="PEM file, or the caBundle's base64; - for stdin")
    v.add_argument("--cert", required=True, help="serving certificate (PEM; tls.crt)")
    v.add_argument(
        "--name",
        required=True,
        help="the DNS name or IP the client connects to, e.g. dynatrace-webhook.dynatrace.svc",
    )
    v.set_defaults(func=cmd_verify)
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
