"""The cache as one Runnable (``KubeState``): a reflector per cached kind, and in cluster mode the init-Secret,
owner and input caches (``webhook.state.slices``), each in its own thread, started in the order their lists
need (DynaKubes before namespaces; owners and inputs once the Store is synced), all signalled by the
reflectors' "listed" events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from webhook.kube.client import DYNAKUBE_GROUP, KubeApi
from webhook.state.reflector import PAGE_SIZE, Reflector
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

log = logging.getLogger(__name__)

DYNAKUBES_FIRST_WAIT = 10.0  # seconds the namespace list waits for the DynaKube list at start


def dynakube_version(api: KubeApi, preferred: str) -> str:
    """The served DynaKube version to watch: ``preferred`` when set, else the group's preferred version."""
    if preferred:
        return preferred
    group = api.get(f"/apis/{DYNAKUBE_GROUP}")
    return str(group["preferredVersion"]["version"])


def _spawn(reflector: Reflector) -> None:
    threading.Thread(target=reflector.run, name=f"watch-{reflector.resource}", daemon=True).start()


class KubeState:
    """The cache, as one Runnable: one reflector per kind the Store caches (by default DynaKubes and Secrets in
    the webhook namespace, all namespaces) and, with ``slices``, the init-Secret, owner and input caches
    (``webhook.state.slices``), each in its own daemon thread."""

    name = "cache"

    def __init__(
        self,
        store: Store,
        api: KubeApi,
        *,
        dynakube_api_version: str = "",
        on_event: Callable[[str, str, Mapping[str, Any] | None], None] | None = None,
        page_size: int = PAGE_SIZE,
        slices: bool = False,
        inputs: bool = False,
    ) -> None:
        self.store = store
        self.slices = slices  # the init-Secret and owner caches too
        self.inputs = inputs  # and the DynaKubes' inputs (for the init Secrets)
        self.api = api
        self.version = dynakube_api_version
        self.on_event = on_event
        self.page_size = page_size
        self.stopping = threading.Event()
        self.reflectors: list[Reflector] = []
        self._dynakubes_listed = threading.Event()
        self._later: Sequence[Reflector] = ()  # started once the Store is synced (a "listed" event says when)
        self._lock = threading.Lock()
        store.source = "kubernetes"

    def start(self) -> None:
        threading.Thread(target=self._run, name="state", daemon=True).start()
        if self.slices:
            from webhook.state import slices

            first, later = slices.reflectors(
                self.api, self.store, stop=self.stopping, inputs=self.inputs, on_event=self._event
            )
            with self._lock:
                self._later = later
            for reflector in first:
                _spawn(reflector)

    def _event(self, resource: str, kind: str, obj: Mapping[str, Any] | None) -> None:
        """Every reflector's events: a whole list of DynaKubes lets the namespaces be listed; the Store synced
        lets the caches readiness does not wait for (owners, inputs) be listed; then the caller's handler."""
        if kind == "listed":
            if resource == DYNAKUBES:
                self._dynakubes_listed.set()
            if self.store.synced:
                with self._lock:
                    later, self._later = self._later, ()
                for (
                    reflector
                ) in later:  # listing 50 000 ReplicaSets beside the namespaces would delay readiness
                    _spawn(reflector)
        if self.on_event is not None:
            self.on_event(resource, kind, obj)

    def _run(self) -> None:
        kinds = self.store.kinds()
        if any("{dynakube_version}" in kind.path for kind in kinds):
            self._discover_version()
        # DynaKubes first: their enrichment rules name namespace annotations the namespace transform keeps, so
        # namespaces listed after them need no second list (a later rule change relists them)
        kinds.sort(key=lambda kind: kind.resource != DYNAKUBES)
        for kind in kinds:
            if self.stopping.is_set():
                return
            if kind.resource == NAMESPACES and DYNAKUBES in self.store.resources:
                self._dynakubes_listed.wait(DYNAKUBES_FIRST_WAIT)  # the DynaKube list's event, or stop()
                if self.stopping.is_set():
                    return
            reflector = Reflector(
                self.api,
                self.store,
                kind.concrete(namespace=self.store.namespace, dynakube_version=self.version),
                page_size=self.page_size,
                on_event=self._event,
                stop=self.stopping,
            )
            self.reflectors.append(reflector)
            _spawn(reflector)

    def _discover_version(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                self.version = dynakube_version(self.api, self.version)
                return
            except Exception as err:
                log.warning("DynaKube API version not discovered (%s); retrying in %.0fs", err, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 30.0)

    def stop(self) -> None:
        self.stopping.set()
        self._dynakubes_listed.set()  # wakes a start that still waits for the DynaKube list
