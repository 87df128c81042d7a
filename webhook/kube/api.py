"""The small slice of the Kubernetes API the webhook uses, as one interface over raw JSON paths.

``KubeApi`` (in ``webhook.kube.client``) implements it with the official client; the tests implement it in
memory (``tests/support/fakeapi.py``), following the API server's documented semantics: resourceVersion on every
object, 409 Conflict on a stale update, 404 on a missing object, 410 Gone on an expired watch.

``pages`` reads a paginated list (``limit``/``continue``) for every caller, with one answer to an expired
continue token; ``list_items`` reads a whole collection with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


# --- paginated lists ---
@dataclass(frozen=True)
class Page:
    items: Items
    resource_version: str  # of the list, as this page's response said ("" when the call does not say)
    last: bool
    restarted: bool  # the first page of the list read again after its continue token expired


class ContinueExpired(ApiError):
    """410 Gone on a continue request (the snapshot the pages come from was compacted), more often than the
    caller allows the list to start again."""


class Stopped(Exception):
    """``proceed()`` said no before the next page."""


PageFetch = Callable[[str], tuple[Items, str, str]]  # continue token -> (items, resourceVersion, next token)


def pages(
    fetch: PageFetch, *, restarts: int = 0, proceed: Callable[[], bool] | None = None
) -> Iterator[Page]:
    """The pages of one paginated list, in order, each fetched when the caller asks for it.

    ``fetch(token)`` reads one page ("" for the first). A 410 Gone on a continue request starts the list
    again from the first page, at most ``restarts`` times; that page comes ``restarted`` and the
    caller drops what it kept of the earlier pages, so a list never mixes two snapshots. One more 410 raises
    ``ContinueExpired``; any other error raises out as it is. ``proceed()`` is asked before each continue
    request; False raises ``Stopped``.
    """
    token, restarted, expired = "", False, 0
    while True:
        if token and proceed is not None and not proceed():
            raise Stopped()
        try:
            items, resource_version, following = fetch(token)
        except ApiError as err:
            if err.status != 410 or not token:
                raise
            if expired >= restarts:
                raise ContinueExpired(
                    410, f"the list's continue token expired {expired + 1} time(s)"
                ) from err
            expired += 1
            token, restarted = "", True
            continue
        yield Page(items, resource_version, not following, restarted)
        if not following:
            return
        token, restarted = following, False


def list_items(
    api: Api, path: str, *, label_selector: str = "", field_selector: str = "", limit: int = 500
) -> Items:
    """Every item of a collection, read in pages of ``limit`` (a 410 mid-list starts it again, twice)."""
    out: Items = []

    def fetch(token: str) -> tuple[Items, str, str]:
        return api.list_page(
            path,
            limit=limit,
            continue_token=token,
            label_selector=label_selector,
            field_selector=field_selector,
        )

    for page in pages(fetch, restarts=2):
        if page.restarted:
            out.clear()
        out.extend(page.items)
    return out
