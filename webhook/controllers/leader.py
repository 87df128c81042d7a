"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's ``leaderelection`` does it.

- ``step()`` is one round: GET the Lease; create it when absent; take it over when it is free (no holder) or
  expired; renew it when we hold it. Every write is a PUT carrying the resourceVersion read, so two
  candidates racing for the same Lease cannot both win: the loser gets 409 Conflict.
- Expiry is judged on the candidate's own clock, never on the timestamps written by another host: a Lease
  counts as expired when its record has not changed for ``leaseDurationSeconds`` since this candidate first
  saw that record (clock skew between nodes does not matter).
- The leader stops acting ``renew_deadline`` after its last successful renewal, which is shorter than the
  lease duration, so an old leader stops before anyone else may take over.
- ``release()`` hands the Lease back (empty holder) so another replica can take over at once on shutdown.

The clock is injectable (``clock() -> seconds since the epoch``), so tests move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from webhook.kube.api import Api, ApiError
from webhook.tolerant import as_str as _str

log = logging.getLogger(__name__)

LEASE_API = "/apis/coordination.k8s.io/v1"


def micro_time(seconds: float) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    """The pod name (HOSTNAME in a pod) plus a random suffix: unique even across restarts of one pod."""
    return f"{os.environ.get('HOSTNAME') or 'dynatrace-webhook'}_{uuid.uuid4().hex[:8]}"


def lease_path(namespace: str, name: str = "") -> str:
    collection = f"{LEASE_API}/namespaces/{namespace}/leases"
    return f"{collection}/{name}" if name else collection


class LeaderElector:
    def __init__(
        self,
        api: Api,
        namespace: str,
        name: str,
        *,
        identity: str = "",
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float],
    ) -> None:
        if not namespace or not name:
            raise ValueError("leader election needs a Lease namespace and name")
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError(
                "leader election timings must satisfy 0 < retry period < renew deadline < lease duration "
                f"(got {retry_period}, {renew_deadline}, {lease_duration})"
            )
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.clock = clock
        self.path = lease_path(namespace, name)
        self._leading = False
        self._last_renew = float("-inf")
        self._next_try = float("-inf")
        self._observed: dict[str, Any] | None = None  # the Lease spec last seen
        self._observed_at = 0.0  # our clock when that spec was first seen
        self._lease: dict[str, Any] | None = None  # the Lease as last read or written by us
        self.holder = ""  # the holder last seen
        self.terms = (
            0  # how often leadership began: a Lease lost and won again between two looks is a new term
        )

    # --- state ---
    def is_leader(self) -> bool:
        """True while we hold the Lease and renewed it less than ``renew_deadline`` ago."""
        if self._leading and self.clock() - self._last_renew >= self.renew_deadline:
            log.warning(
                "leader election: lease %s/%s not renewed in time, stepping down", self.namespace, self.name
            )
            self._leading = False
        return self._leading

    # --- one round ---
    def step(self) -> bool:
        """Acquire or renew when a retry period has passed since the last try; return ``is_leader()``."""
        now = self.clock()
        if now >= self._next_try:
            self._next_try = now + self.retry_period
            try:
                self._try_acquire_or_renew(now)
            except ApiError as err:
                log.warning("leader election: lease %s/%s: %s", self.namespace, self.name, err)
        return self.is_leader()

    def _record(self, now: float, *, acquire: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": acquire,
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }

    def _won(self, lease: dict[str, Any], now: float) -> None:
        if not self._leading:
            self.terms += 1
            log.info("leader election: %s now holds lease %s/%s", self.identity, self.namespace, self.name)
        self._leading = True
        self._last_renew = now
        self._lease = lease
        self._observed = dict(lease.get("spec") or {})
        self._observed_at = now
        self.holder = self.identity

    def _lost(self, holder: str) -> None:
        if self._leading:
            log.warning(
                "leader election: %s lost lease %s/%s to %r", self.identity, self.namespace, self.name, holder
            )
        self._leading = False
        self.holder = holder

    def _try_acquire_or_renew(self, now: float) -> None:
        try:
            lease = self.api.get(self.path)
        except ApiError as err:
            if err.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._record(now, acquire=micro_time(now), transitions=0),
            }
            try:
                self._won(self.api.create(lease_path(self.namespace), body), now)
            except ApiError as create_err:
                if create_err.status != 409:
                    raise
                self._lost("")  # another candidate created it first; read it next round
            return

        raw_spec = lease.get("spec")
        spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
        if spec != self._observed:
            self._observed = dict(spec)
            self._observed_at = now
        holder = _str(spec.get("holderIdentity"))
        duration = spec.get("leaseDurationSeconds")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
            duration = self.lease_duration
        if holder and holder != self.identity and self._observed_at + duration > now:
            self._lost(holder)
            return

        transitions = spec.get("leaseTransitions")
        transitions = transitions if isinstance(transitions, int) and transitions >= 0 else 0
        ours = holder == self.identity
        acquire = (_str(spec.get("acquireTime")) if ours else "") or micro_time(now)
        updated = dict(lease)
        updated["spec"] = {
            **spec,
            **self._record(now, acquire=acquire, transitions=transitions if ours else transitions + 1),
        }
        try:
            self._won(self.api.replace(self.path, updated), now)
        except ApiError as err:
            if err.status != 409:
                raise
            self._lost(holder)  # someone else wrote the Lease since we read it

    def release(self) -> None:
        """Give the Lease up (empty holder, 1 s duration) if we hold it; errors are logged, not raised."""
        if not self._leading or self._lease is None:
            self._leading = False
            return
        self._leading = False
        now = self.clock()
        body = dict(self._lease)
        spec = dict(body.get("spec") or {})
        spec.update(
            {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(now),
                "acquireTime": micro_time(now),
            }
        )
        body["spec"] = spec
        try:
            self.api.replace(self.path, body)
            log.info("leader election: %s released lease %s/%s", self.identity, self.namespace, self.name)
        except ApiError as err:
            log.warning("leader election: releasing lease %s/%s failed: %s", self.namespace, self.name, err)
        self._lease = None
