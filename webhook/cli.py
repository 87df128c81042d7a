"""Command line: ``dynatrace-webhook [serve]`` runs the webhook (the default); other tasks are subcommands."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Mapping

from webhook import __version__, options
from webhook.config import Settings

SUBCOMMANDS = ("serve", "explain", "certs")
# what explain shares with serve: where the state comes from and what the decision is given
EXPLAIN_OPTIONS = (
    "--state-file",
    "--kubeconfig",
    "--namespace",
    "--dynakube-api-version",
    "--init-image",
    "--csi-driver",
)


def _check_cert_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.cert_renew_before >= args.cert_validity:
        parser.error("--cert-renew-before must be shorter than --cert-validity")
    if args.ca_renew_before >= args.ca_validity:
        parser.error("--ca-renew-before must be shorter than --ca-validity")


def settings_from(args: argparse.Namespace) -> Settings:
    values = options.settings_values(args)
    # the two values that depend on another option
    values["cert_mode"] = values["cert_mode"] or ("dev" if values["state_file"] else "files")
    values["reinject"] = values["reinject"] or values["reinject_dry_run"]
    return Settings(**values)


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command line; option defaults from ``environ`` (default: the process's environment)."""
    parser = argparse.ArgumentParser(prog="dynatrace-webhook", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the webhook (the default when no subcommand is given)")
    options.add_arguments(serve, environ=environ)
    explain = sub.add_parser("explain", help="show why a pod would (not) be injected, check by check")
    explain.add_argument("pod", help="pod manifest, YAML or JSON; - for standard input")
    options.add_arguments(explain, EXPLAIN_OPTIONS, environ)
    explain.add_argument(
        "-n", "--pod-namespace", default="", help="the pod's namespace (default: its metadata)"
    )
    explain.add_argument("-o", "--output", choices=("text", "json"), default="text")
    sub.add_parser(
        "certs",
        add_help=False,
        help="generate, inspect and check certificates (dynatrace-webhook certs --help)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "serve")
    if argv[0] == "certs":
        from webhook.tls.tool import main as certs_main

        return certs_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        _check_cert_arguments(parser, args)
    if args.command == "explain":
        from webhook.explain_cli import run_explain

        return run_explain(args)
    # start-up allocates what lives as long as the process (modules, the cache): no collection passes over
    # it while it grows; the server collects once, freezes and turns the collector on (webhook.server.settle)
    gc.disable()
    from webhook.server import run

    return run(settings_from(args))
