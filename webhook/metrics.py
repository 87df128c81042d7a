"""Prometheus metrics: one registry per process (no globals), bounded labels (paths, outcomes, reasons)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# sub-millisecond to 10 s: kube-apiserver's own webhook histogram starts at 5 ms, ours resolves below it
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        p = "dynatrace_webhook_"
        self._admission(r, p)
        self._cache(r, p)
        self._certificates(r, p)
        self._controllers(r, p)

    def _admission(self, r: CollectorRegistry, p: str) -> None:
        self.requests = Counter(
            p + "requests",
            "Admission requests by webhook path and HTTP status code.",
            ["path", "code"],
            registry=r,
        )
        self.latency = Histogram(
            p + "request_duration_seconds",
            "Admission request handling time by path.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.header_timeouts = Counter(
            p + "header_timeouts",
            "Connections closed because a request's headers did not arrive within --header-timeout, by "
            "listener (admission, health, metrics).",
            ["listener"],
            registry=r,
        )
        self.in_flight = Gauge(p + "requests_in_flight", "Admission requests being handled.", registry=r)
        self.injections = Counter(
            p + "injections",
            "Pod admissions by outcome (injected, reinvoked, skipped, failed) and reason.",
            ["outcome", "reason"],
            registry=r,
        )
        self.admissions = Counter(
            p + "admissions", "Admission answers by webhook and outcome.", ["webhook", "outcome"], registry=r
        )

    def _cache(self, r: CollectorRegistry, p: str) -> None:
        self.cache_synced = Gauge(
            p + "cache_synced",
            "1 when a cache holds a whole list of its resource (client-go's HasSynced), else 0: every kind, and "
            "in cluster mode the init-Secret, owner and input caches (readiness waits for the kinds and the init "
            "Secrets only).",
            ["resource"],
            registry=r,
        )
        self.cache_objects = Gauge(
            p + "cache_objects", "Objects in the state cache by resource.", ["resource"], registry=r
        )
        self.cache_last_event = Gauge(
            p + "cache_last_event_timestamp_seconds",
            "Unix time of the last list or watch event by resource.",
            ["resource"],
            registry=r,
        )
        self.watch_events = Counter(
            p + "watch_events",
            "Watch events, relists and reconnects by resource.",
            ["resource", "type"],
            registry=r,
        )
        self.connection_info_complete = Gauge(
            p + "dynakube_connection_info_complete",
            "1 when the DynaKube's connection info allows injection, else 0.",
            ["dynakube", "network_zone"],
            registry=r,
        )

    def _certificates(self, r: CollectorRegistry, p: str) -> None:
        self.cert_not_after = Gauge(
            p + "certificate_not_after_timestamp_seconds",
            "Expiry (Unix time) of the served certificate (certificate=serving) and, with self-managed "
            "certificates, of the CA (certificate=ca).",
            ["certificate"],
            registry=r,
        )
        self.cert_secret_writes = Counter(
            p + "certificate_secret_writes",
            "Writes of the certificate Secret by action (create, rotate_ca, trust, renew) and result "
            "(success, conflict: another replica wrote first, error).",
            ["action", "result"],
            registry=r,
        )
        self.ca_bundle_patches = Counter(
            p + "ca_bundle_patches",
            "caBundle updates by webhook configuration kind (mutating, validating) and result (patched, "
            "unchanged, conflict, not_found, error).",
            ["kind", "result"],
            registry=r,
        )
        self.cert_reloads = Counter(
            p + "certificate_reloads",
            "Certificate loads by result (success, failure).",
            ["result"],
            registry=r,
        )
        self.state_reloads = Counter(
            p + "state_file_reloads", "Local state file loads by result.", ["result"], registry=r
        )

    def _controllers(self, r: CollectorRegistry, p: str) -> None:
        self.reinjections = Counter(
            p + "reinjections",
            "Automatic reinjection: workloads by outcome (restarted, skipped, failed, reported) and reason.",
            ["outcome", "reason"],
            registry=r,
        )
        self.reinjection_pending = Gauge(
            p + "reinjection_pending_pods",
            "Pods that automatic reinjection has found needing a restart to get OneAgent and not yet restarted.",
            registry=r,
        )
        self.missed_pods = Gauge(
            p + "missed_pods",
            "Pods created after their namespace was mapped to a DynaKube that never reached the webhook (no "
            "injection annotation), as of the last scan of the leader (--reinject).",
            ["namespace", "dynakube"],
            registry=r,
        )
        self.reinjection_leader = Gauge(
            p + "reinjection_leader", "1 when this replica holds the reinjection Lease, else 0.", registry=r
        )
        self.init_secrets = Counter(
            p + "init_secrets",
            "Init Secrets written by the initsecrets controller, by action (created, updated, deleted, failed) "
            "and Secret name.",
            ["action", "secret"],
            registry=r,
        )
        self.leader = Gauge(
            p + "leader",
            "1 when this replica holds the Lease that gates the writing controllers (reinjection, init "
            "Secrets, relabeling), else 0.",
            registry=r,
        )
        self.init_secrets_leader = Gauge(
            p + "init_secrets_leader", "1 when this replica holds the initsecrets Lease, else 0.", registry=r
        )
        self.init_secret_first_need = Counter(
            p + "init_secret_first_need",
            "Init Secrets an admission found missing and created on first need, by result (created; exists: "
            "409, someone was first; failed; timeout: no answer within the budget, the create goes on; backoff: "
            "not sent after a recent failure; inputs-missing: the cache lacks what it is generated from) and "
            "Secret name.",
            ["result", "secret"],
            registry=r,
        )
        self.init_secret_missing = Counter(
            p + "init_secret_missing_admissions",
            "Pods admitted without injection because an init Secret was not (yet) in their namespace.",
            registry=r,
        )

        self.events = Counter(
            p + "events",
            "Kubernetes Events (events.k8s.io) by result (sent: created, aggregated: added to an existing "
            "Event's series, dropped: queue full, failed: API error).",
            ["result"],
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
