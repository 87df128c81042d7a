"""Which optional API group versions the cluster serves, probed in the background into ``Store.served``.

``/validate`` needs to know whether Istio's ``networking.istio.io/v1beta1`` is served (a DynaKube with
``spec.enableIstio``). Upstream asks discovery on every request; here a daemon thread asks every ``interval``
seconds, so no admission waits for the API. 404 means not served; any other failure keeps the last answer
(unknown until one arrived).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from webhook.kube.api import ApiError
from webhook.state.store import ISTIO_API, Store

log = logging.getLogger(__name__)


class Discovery:
    def __init__(
        self, api: Any, store: Store, group_versions: tuple[str, ...] = (ISTIO_API,), interval: float = 60.0
    ) -> None:
        self.api = api
        self.store = store
        self.group_versions = group_versions
        self.interval = interval
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

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="discovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
