"""The admission paths as values: which webhook a path is and its handler (``Route``), upstream's ``/validate-…``
aliases. No web framework: the server wires the routes (``webhook.admit``) before it imports the app that serves
them (``webhook.admission.app``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from webhook.admission.review import Answer, Review

VALIDATE_ALIASES = (
    *(f"/validate-dynatrace-com-v1beta{v}-dynakube" for v in range(1, 7)),
    "/validate-dynatrace-com-v1alpha1-edgeconnect",
    "/validate-dynatrace-com-v1alpha2-edgeconnect",
)


@dataclass(frozen=True)
class Route:
    webhook: str  # bounded label: inject, label-ns, validate
    # an Answer, or (rarely: /inject creating an init Secret on first need) an awaitable of one
    handler: Callable[[Review], Answer | Awaitable[Answer]]
    # the handler never reads the objects' metadata.managedFields: they are not parsed (``decode(lean=True)``)
    lean: bool = False
