"""``dynatrace-webhook explain``: read a pod manifest and the state, print the decision."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
import yaml

from webhook.explain import explain, load_manifest, render_text
from webhook.mutation import pod as pods
from webhook.options import DEFAULT_BOOTSTRAPPER_IMAGE
from webhook.state.local import LocalState
from webhook.state.store import Store


def load_cluster_state(store: Store, kubeconfig: str | None, version: str) -> None:
    """One paginated list of every kind the Store caches, as the running webhook does at start."""
    from webhook.kube.client import KubeApi, load_api_client
    from webhook.state.cluster import dynakube_version
    from webhook.state.reflector import Reflector

    api = KubeApi(load_api_client(kubeconfig))
    version = dynakube_version(api, version)
    for kind in store.kinds():
        Reflector(api, store, kind.concrete(namespace=store.namespace, dynakube_version=version)).list_once()


def run_explain(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.pod == "-" else Path(args.pod).read_text()
        pod = load_manifest(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"explain: cannot read the pod manifest: {err}", file=sys.stderr)
        return 2
    store = Store(args.namespace)
    try:
        if args.state_file:
            if not LocalState(args.state_file, store).load():
                raise RuntimeError(f"state file {args.state_file} could not be loaded")
        else:
            load_cluster_state(store, args.kubeconfig, args.dynakube_api_version)
    except Exception as err:
        print(f"explain: cannot read the state: {err}", file=sys.stderr)
        return 2
    settings = pods.Settings(
        image=args.init_image,
        version=__import__("webhook").__version__,
        csi=args.csi_driver,
        contract=getattr(args, "contract", pods.CONTRACT_AUTO),
        images={"v1.10": getattr(args, "bootstrapper_image", DEFAULT_BOOTSTRAPPER_IMAGE)},
    )
    report = explain(pod, store, settings, args.pod_namespace)
    if args.output == "json":
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_text(report))
    return 0
