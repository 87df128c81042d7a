"""Reading kube-apiserver's audit log (JSON lines, one event per request and stage) to count what a given
identity asked the API server, and finding that identity in a kubeconfig.

The local control plane of ``../shared/k8s`` writes ``$K8S_E2E_HOME/logs/audit.log`` at level Metadata for
every request and keeps a second identity, ``kubeconfig-webhook`` (CN ``dynatrace-webhook``), for the process
under test. A window of the log is delimited by byte offsets: ``AuditLog.offset()`` before, and after the
interesting requests a request of our own that is awaited in the log (``AuditLog.mark``), so everything the API
server handled before it has been written by then.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.e2e.helpers import NAMESPACES, exists, short_id, wait
from webhook.kube.client import KubeApi

# requests the "no API call on the admission path" promise does not cover: the watches that keep the cache,
# and the background writers (Events recorded off the admission path, the leader-election Lease)
BACKGROUND_VERBS = frozenset({"watch"})
BACKGROUND_RESOURCES = frozenset({"events", "leases"})
# kube-apiserver's audit annotation for each call of a mutating webhook
MUTATION_ROUND = "mutation.webhook.admission.k8s.io/round_"


def client_certificate_user(kubeconfig: Path) -> str | None:
    """The user name the API server sees for a kubeconfig's current context: the CN of its client
    certificate. None when it authenticates otherwise (token, exec plugin) or cannot be read."""
    try:
        config = yaml.safe_load(kubeconfig.read_text()) or {}
        context_name = config.get("current-context")
        contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts") or []}
        users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
        context = contexts.get(context_name) or next(iter(contexts.values()), {})
        user = users.get(context.get("user")) or {}
        if "client-certificate-data" in user:
            pem = base64.b64decode(user["client-certificate-data"])
        elif "client-certificate" in user:
            pem = (kubeconfig.parent / user["client-certificate"]).read_bytes()
        else:
            return None
        names = x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError):
        return None
    return str(names[0].value) if names else None


def username(event: dict[str, Any]) -> str:
    return str((event.get("user") or {}).get("username") or "")


def resource(event: dict[str, Any]) -> str:
    return str((event.get("objectRef") or {}).get("resource") or "")


def describe(event: dict[str, Any]) -> str:
    """``verb requestURI -> code`` of one audit event, for assertion messages."""
    code = (event.get("responseStatus") or {}).get("code")
    return f"{event.get('verb')} {event.get('requestURI')} -> {code}"


def is_background(event: dict[str, Any]) -> bool:
    return event.get("verb") in BACKGROUND_VERBS or resource(event) in BACKGROUND_RESOURCES


@dataclass(frozen=True)
class AuditLog:
    path: Path
    user: str  # the webhook's identity: whose requests ``requests_of_webhook`` returns

    def offset(self) -> int:
        return self.path.stat().st_size

    def events(self, start: int = 0, end: int | None = None) -> Iterator[dict[str, Any]]:
        """The audit events written between two offsets (a line cut at either end is skipped)."""
        with self.path.open("rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(max(0, end - start))
        for line in data.splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(line)
                if isinstance(event, dict):
                    yield event

    def requests_of_webhook(self, start: int, end: int) -> list[dict[str, Any]]:
        return [e for e in self.events(start, end) if username(e) == self.user]

    def webhook_rounds(self, start: int, end: int, configuration: str, namespace: str, pod: str) -> list[str]:
        """The rounds in which the API server called a webhook of ``configuration`` for a pod's CREATE (its
        audit annotations ``mutation.webhook.admission.k8s.io/round_<round>_index_<i>``, written at level
        Metadata): ``["0"]`` is one call, ``["0", "1"]`` a reinvocation."""
        rounds = []
        for event in self.events(start, end):
            ref = event.get("objectRef") or {}
            if event.get("verb") != "create" or event.get("stage") != "ResponseComplete":
                continue
            if (ref.get("resource"), ref.get("namespace"), ref.get("name")) != ("pods", namespace, pod):
                continue
            for key, value in (event.get("annotations") or {}).items():
                if (
                    key.startswith(MUTATION_ROUND)
                    and orjson.loads(value).get("configuration") == configuration
                ):
                    rounds.append(key.removeprefix(MUTATION_ROUND).split("_", 1)[0])
        return sorted(rounds)

    def mark(self, kube: KubeApi, start: int, timeout: float = 30) -> int:
        """Send a request of our own (a GET of a namespace that does not exist, its name unique) and wait until
        the API server logged it; return the offset just past it. Requests the API server completed before
        this one are in the log before that offset."""
        name = f"e2e-audit-mark-{short_id()}"
        exists(kube, f"{NAMESPACES}/{name}")

        def logged() -> int | None:
            position = start
            with self.path.open("rb") as f:
                f.seek(start)
                for line in f:
                    position += len(line)
                    if name.encode() in line:
                        return position
            return None

        return int(wait(logged, timeout=timeout, what=f"the audit log to show request {name}", interval=0.2))
