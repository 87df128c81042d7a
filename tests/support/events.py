"""The webhook's Events as the tests read them: written on ``events.k8s.io/v1``, seen as the core v1 view that
``kubectl get events`` and ``/api/v1/namespaces/<ns>/events`` show (the API server maps ``regarding`` to
``involvedObject``, ``note`` to ``message``, ``reportingController`` to ``reportingComponent`` and the series'
count to ``count``)."""

from __future__ import annotations

from typing import Any

from tests.support.fakeapi import FakeApi


def collection(namespace: str) -> str:
    return f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"


def core_view(event: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event in its core v1 form (the fields the tests read)."""
    series = event.get("series") or {}
    return {
        "metadata": event.get("metadata"),
        "involvedObject": event.get("regarding"),
        "reason": event.get("reason"),
        "message": event.get("note"),
        "type": event.get("type"),
        "action": event.get("action"),
        "reportingComponent": event.get("reportingController"),
        "reportingInstance": event.get("reportingInstance"),
        "eventTime": event.get("eventTime"),
        "count": int(series.get("count", 1)),
    }


def events_in(api: FakeApi, namespace: str) -> list[dict[str, Any]]:
    """The Events of ``namespace`` the fake API holds, in their core v1 view, by path."""
    prefix = collection(namespace) + "/"
    with api.lock:
        return [core_view(o) for p, o in sorted(api.objects.items()) if p.startswith(prefix)]
