"""The small slice of the Kubernetes API the webhook uses, as one interface over raw JSON paths.

``KubeApi`` (in ``webhook.state.kube``) implements it with the official client; the tests implement it in
memory (``tests/fakeapi.py``), following the API server's documented semantics: resourceVersion on every
object, 409 Conflict on a stale update, 404 on a missing object, 410 Gone on an expired watch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

Items = list[dict[str, Any]]  # the items of a list


class ApiError(Exception):
    """An HTTP error from the API server; ``retry_after`` in seconds when it said so."""

    def __init__(self, status: int, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}" if message else f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class Api(Protocol):
    def get(self, path: str) -> dict[str, Any]:
        """GET one object (or a discovery document)."""
        ...

    def list(self, path: str, label_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """Return (items, resourceVersion of the list)."""
        ...

    def list_page(
        self,
        path: str,
        *,
        limit: int,
        continue_token: str = "",
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
        resource_version: str = "",
    ) -> tuple[Items, str, str]:
        """One page of a paginated list: (items, resourceVersion, continue token, "" on the last page).
        A continue token the server no longer holds is 410 Gone. ``metadata_only``: PartialObjectMetadata.
        ``resource_version``: a state not older than it (``resourceVersionMatch=NotOlderThan``); a store that
        has not reached it answers "Too large resource version"."""
        ...

    def watch(
        self,
        path: str,
        resource_version: str,
        timeout_seconds: int,
        *,
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Yield watch events ({"type": ..., "object": ...}) until the server ends the watch."""
        ...

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to a collection path; 409 when the name exists."""
        ...

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT an object; 409 when ``metadata.resourceVersion`` is stale (optimistic concurrency)."""
        ...

    def patch(self, path: str, body: Any, patch_type: str = "merge") -> dict[str, Any]:
        """PATCH an object: ``merge`` (RFC 7386), ``strategic`` or ``json`` (RFC 6902)."""
        ...

    def delete(self, path: str) -> None: ...

    def list_metadata_page(
        self, path: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> tuple[Items, str]:
        """One page of a metadata-only list (PartialObjectMetadata): (items, continue token, "" on the last
        page). A continue token the server no longer holds is 410 Gone."""
        ...
