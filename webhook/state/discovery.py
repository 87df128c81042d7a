"""Which optional API group versions the cluster serves, and its version, probed in the background into
``Store.served`` and ``Store.kubernetes_minor``.

``/validate`` needs to know whether Istio's ``networking.istio.io/v1beta1`` is served (a DynaKube with
``spec.enableIstio``). Upstream asks discovery on every request; here a daemon thread asks every ``interval``
seconds, so no admission waits for the API. 404 means not served; any other failure keeps the last answer
(unknown until one arrived). The same thread reads ``/version`` at start and every ``version_interval`` seconds
(5 minutes, as upstream's version cache): the minor version of an ActiveGate ``rollingUpdate`` warning. A
failed read or an unparsable minor keeps the last one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from webhook.kube.api import ApiError
from webhook.state.store import ISTIO_API, Store

log = logging.getLogger(__name__)


class Discovery:
    def __init__(
        self,
        api: Any,
        store: Store,
        group_versions: tuple[str, ...] = (ISTIO_API,),
        interval: float = 60.0,
        *,
        version_interval: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.store = store
        self.group_versions = group_versions
        self.interval = interval
        self.version_interval = version_interval
        self.clock = clock
        self._version_read: float | None = None  # clock() of the last /version read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        for group_version in self.group_versions:
            try:
                self.api.get(f"/apis/{group_version}")
                served = True
            except ApiError as err:
                if err.status != 404:
                    log.warning("discovery of %s failed (%s); keeping the last answer", group_version, err)
                    continue
                served = False
            except Exception as err:
                log.warning("discovery of %s failed (%s); keeping the last answer", group_version, err)
                continue
            if self.store.served.get(group_version) != served:
                log.info("API %s is %s", group_version, "served" if served else "not served")
                self.store.served = {**self.store.served, group_version: served}

    def poll_version(self) -> None:
        """Read ``/version`` when the last read is ``version_interval`` old (or there was none)."""
        now = self.clock()
        if self._version_read is not None and now - self._version_read < self.version_interval:
            return
        self._version_read = now
        try:
            minor = _minor(self.api.get("/version"))
        except Exception as err:
            log.warning("reading the Kubernetes version failed (%s); keeping the last one", err)
            return
        if minor is None:
            log.warning("the Kubernetes version has no minor version number; keeping the last one")
        elif minor != self.store.kubernetes_minor:
            log.info("Kubernetes minor version %d", minor)
            self.store.kubernetes_minor = minor

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_version()
            self.poll()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="discovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def _minor(info: Any) -> int | None:
    """The minor version of a ``/version`` answer (``"35"``; a provider's ``"33+"`` read as 33)."""
    match = re.match(r"\d+", str(info.get("minor", "")) if isinstance(info, dict) else "")
    return int(match.group()) if match else None
