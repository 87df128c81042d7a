"""More Dynatrace Operator v1.10.2 DynaKube checks: resource attributes (``resource_attributes.go``), telemetry
ingest (``telemetryservice.go``), databases (``databases.go``) and the warnings new since v1.4."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable

from webhook.tolerant import as_list, as_map, as_str
from webhook.validation import gourl, hub, labels, latest, name
from webhook.validation.base import Context, DynaKube

ATTRIBUTES_LIMIT = 10
_GLOBAL = "spec.resourceAttributes"
_ONEAGENT = "spec.oneAgent.*.additionalResourceAttributes"
_OTLP = "spec.otlpExporterConfiguration.additionalResourceAttributes"
INVALID_ENTRIES = "%s contains invalid entries: %s"
INVALID_KEYS = "%s contains invalid keys:%s"
RENAMED_KEYS = (
    "%s contains invalid keys that will be automatically renamed:%s. Consider updating these keys in your "
    "DynaKube spec to avoid confusion."
)
EXCEEDS_LIMIT = (
    "This resource defines %d %s, which exceeds the recommended limit of 10. Attributes increase ingestion volume "
    "resulting in higher ingest cost. Consider removing attributes or consolidating metadata before applying this "
    "DynaKube resource."
)
_TI = "DynaKube's specification enables the TelemetryIngest feature,"
TI_NO_PROTOCOLS = f"{_TI} at least one Protocol has to be specified."
TI_UNKNOWN_PROTOCOLS = f"{_TI} unsupported protocols found on the Protocols list."
TI_NAME_NOT_DNS1035 = (
    f"{_TI} the telemetry service name violates DNS-1035.\n    [The length limit for the name is 63. Additionally "
    "a DNS-1035 name must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation "
    "is '[a-z]([-a-z0-9]*[a-z0-9])?')]\n\t"
)
TI_NAME_IN_USE = f"The {_TI} the telemetry service name is already used by other Dynakube."
TI_FORBIDDEN_SUFFIX = f"The {_TI} the telemetry service name is incorrect because of forbidden suffix."
PROTOCOLS = ("otlp", "jaeger", "statsd", "zipkin")
OTEL_IMAGE = (
    "The Dynakube's specification specifies the OTel Collector, but no image repository/tag is configured."
)
DB_IMAGE = (
    "DynaKube's specification enables the database extensions feature, make sure you correctly specify the "
    "sqlExtensionExecutor image."
)
DB_MOUNT_CONFLICT = (
    "Database volume mount (%s) in conflict with a default database volume mount (%s) detected. Please make sure "
    "to avoid such conflicts."
)
DB_MOUNT_WITHOUT_VOLUME = "Invalid database volume mount detected: %s. No matching database volume found."
DB_UNUSED_VOLUMES = (
    "Unused database volume(s) found (%s). Make sure to mount all database volumes defined in the DynaKube."
)
DB_DEFAULT_MOUNTS = ("/tmp", "/var/run/dynatrace/executor/token", "/var/ssl-certs/dynatrace")
_SANITIZE_CHARS = re.compile(r"[^a-zA-Z0-9\-_.]")
_SANITIZE_EDGES = re.compile(r"(?:^[^a-zA-Z0-9]+)|(?:[^a-zA-Z0-9]+$)")


# --- resource attributes ---


def _entry_errors(attributes: dict[str, str]) -> str:
    found = []
    for key, value in attributes.items():
        key_errors = labels.qualified_name_errors(key)
        if key_errors:
            found.append(f", invalid key {gourl.go_quote(key)}: {'; '.join(key_errors)}")
        value_errors = labels.label_value_errors(value)
        if value_errors:
            q = gourl.go_quote
            found.append(f", invalid value {q(value)} for key {q(key)}: {'; '.join(value_errors)}")
    return "".join(found)


def sanitize_key(key: str) -> str:
    return _SANITIZE_EDGES.sub("", _SANITIZE_CHARS.sub("_", key))


def _sanitization(attributes: dict[str, str]) -> tuple[str, str]:
    """(renamed keys, keys dropped, too long or colliding after sanitization), in key order."""
    renamed, broken = [], []
    seen: dict[str, str] = {}
    q = gourl.go_quote
    for key in sorted(attributes):
        clean = sanitize_key(key)
        if not clean:
            broken.append(f", key {q(key)} will be dropped — no valid characters remain after sanitization")
            continue
        if len(clean) > 63:
            broken.append(
                f", key {q(key)} sanitizes to {q(clean)} which exceeds the 63-character annotation name-segment limit"
            )
            continue
        if clean in seen:
            broken.append(
                f", keys {q(seen[clean])} and {q(key)} both sanitize to {q(clean)} — rename one to avoid an "
                "ambiguous collision"
            )
        else:
            seen[clean] = key
        if clean != key:
            renamed.append(f", key {q(key)} will be renamed to {q(clean)}")
    return "".join(renamed), "".join(broken)


def _oneagent_attributes(dk: DynaKube) -> dict[str, str] | None:
    additional = latest.oneagent_additional_attributes(dk)
    return {**latest.global_attributes(dk), **additional} if additional else None


def _otlp_attributes(dk: DynaKube) -> dict[str, str] | None:
    additional = latest.otlp_additional_attributes(dk)
    return {**latest.global_attributes(dk), **additional} if additional else None


Attributes = Callable[[DynaKube], "dict[str, str] | None"]
_SOURCES: dict[str, tuple[Attributes, str]] = {
    _GLOBAL: (latest.global_attributes, "global resource attributes"),
    _ONEAGENT: (_oneagent_attributes, "resource attributes for the OneAgent"),
    _OTLP: (_otlp_attributes, "resource attributes for OTLP exporter auto-configuration"),
}


def _invalid_entries(path: str) -> Callable[[DynaKube, Context], str | None]:
    def check(dk: DynaKube, ctx: Context) -> str | None:
        found = _entry_errors(_SOURCES[path][0](dk) or {})
        return INVALID_ENTRIES % (path, found) if found else None

    return check


def _invalid_keys(path: str) -> Callable[[DynaKube, Context], str | None]:
    def check(dk: DynaKube, ctx: Context) -> str | None:
        broken = _sanitization(_SOURCES[path][0](dk) or {})[1]
        return INVALID_KEYS % (path, broken) if broken else None

    return check


def _renamed_keys(path: str) -> Callable[[DynaKube, Context], str | None]:
    def check(dk: DynaKube, ctx: Context) -> str | None:
        renamed = _sanitization(_SOURCES[path][0](dk) or {})[0]
        return RENAMED_KEYS % (path, renamed) if renamed else None

    return check


def _exceeds_limit(path: str) -> Callable[[DynaKube, Context], str | None]:
    def check(dk: DynaKube, ctx: Context) -> str | None:
        count = len(_SOURCES[path][0](dk) or {})
        return EXCEEDS_LIMIT % (count, _SOURCES[path][1]) if count > ATTRIBUTES_LIMIT else None

    return check


def _named(check: Callable[[DynaKube, Context], str | None], check_name: str) -> Callable[..., str | None]:
    check.__name__ = check.__qualname__ = check_name
    return check


invalid_global_attributes = _named(_invalid_entries(_GLOBAL), "invalid_global_attributes")
invalid_oneagent_attributes = _named(_invalid_entries(_ONEAGENT), "invalid_oneagent_attributes")
invalid_otlp_attributes = _named(_invalid_entries(_OTLP), "invalid_otlp_attributes")
invalid_global_attribute_keys = _named(_invalid_keys(_GLOBAL), "invalid_global_attribute_keys")
invalid_oneagent_attribute_keys = _named(_invalid_keys(_ONEAGENT), "invalid_oneagent_attribute_keys")
invalid_otlp_attribute_keys = _named(_invalid_keys(_OTLP), "invalid_otlp_attribute_keys")
renamed_global_attribute_keys = _named(_renamed_keys(_GLOBAL), "renamed_global_attribute_keys")
renamed_oneagent_attribute_keys = _named(_renamed_keys(_ONEAGENT), "renamed_oneagent_attribute_keys")
renamed_otlp_attribute_keys = _named(_renamed_keys(_OTLP), "renamed_otlp_attribute_keys")
too_many_global_attributes = _named(_exceeds_limit(_GLOBAL), "too_many_global_attributes")
too_many_oneagent_attributes = _named(_exceeds_limit(_ONEAGENT), "too_many_oneagent_attributes")
too_many_otlp_attributes = _named(_exceeds_limit(_OTLP), "too_many_otlp_attributes")


# --- telemetry ingest ---


def _protocols(dk: DynaKube) -> list[str]:
    given = [as_str(p) for p in as_list(as_map(hub.spec(dk).get("telemetryIngest")).get("protocols"))]
    return given or list(PROTOCOLS)  # none given: every registered protocol


def telemetry_no_protocols(dk: DynaKube, ctx: Context) -> str | None:
    return TI_NO_PROTOCOLS if latest.telemetry_ingest(dk) and not _protocols(dk) else None


def telemetry_unknown_protocols(dk: DynaKube, ctx: Context) -> str | None:
    unknown = [p for p in _protocols(dk) if p not in PROTOCOLS]
    return TI_UNKNOWN_PROTOCOLS if latest.telemetry_ingest(dk) and unknown else None


def telemetry_name_not_dns1035(dk: DynaKube, ctx: Context) -> str | None:
    service = latest.telemetry_service_name(dk)
    if not latest.telemetry_ingest(dk) or not service:
        return None
    return None if name.is_dns1035_label(service) else TI_NAME_NOT_DNS1035


def telemetry_forbidden_suffix(dk: DynaKube, ctx: Context) -> str | None:
    service = latest.telemetry_service_name(dk)
    if not latest.telemetry_ingest(dk) or not service:
        return None
    suffixes = ("-extension-controller", "-telemetry-ingest", "-activegate", "-webhook")
    if service.endswith(suffixes):
        return f"{TI_FORBIDDEN_SUFFIX} Telemetry service name: {service}"
    return None


def telemetry_service_name_in_use(dk: DynaKube, ctx: Context) -> str | None:
    if not latest.telemetry_ingest(dk):
        return None
    mine = latest.effective_service_name(dk)
    for other in map(latest.to_latest, ctx.dynakubes):
        if hub.name(other) == hub.name(dk) or not latest.telemetry_ingest(other):
            continue
        if latest.effective_service_name(other) == mine:
            return (
                f"{TI_NAME_IN_USE} Conflicting Dynakube: {hub.name(other)}. Conflicting telemetry service name: "
                f"{mine}"
            )
    return None


def missing_otel_collector_image(dk: DynaKube, ctx: Context) -> str | None:
    if not latest.telemetry_ingest(dk) and not latest.prometheus(dk):
        return None
    return OTEL_IMAGE if hub.image_ref_incomplete(hub.templates(dk).get("otelCollector")) else None


# --- databases ---


def missing_database_executor_image(dk: DynaKube, ctx: Context) -> str | None:
    if not latest.databases(dk) or latest.public_registry(dk):
        return None
    return DB_IMAGE if hub.image_ref_incomplete(hub.templates(dk).get("sqlExtensionExecutor")) else None


def _names(items: object) -> list[str]:
    return [as_str(as_map(i).get("name")) for i in as_list(items)]


def _inside(path: str, base: str) -> bool:
    """Go's ``filepath.Rel(base, path)`` does not start with ``../``."""
    return not posixpath.relpath(posixpath.normpath(path), base).startswith("../")


def database_volume_mounts(dk: DynaKube, ctx: Context) -> str | None:
    defaults = DB_DEFAULT_MOUNTS + (
        ("/var/ssl-certs/user",) if as_str(hub.spec(dk).get("trustedCAs")) else ()
    )
    for database in latest.databases(dk):
        volumes = _names(database.get("volumes"))
        for mount in map(as_map, as_list(database.get("volumeMounts"))):
            mount_name, path = as_str(mount.get("name")), as_str(mount.get("mountPath"))
            if mount_name not in volumes:
                return DB_MOUNT_WITHOUT_VOLUME % mount_name
            for default in defaults:
                if not path.startswith("/"):
                    return f"Invalid database volume mount path detected ({path}). Make sure to use absolute paths."
                if _inside(path, default):
                    return DB_MOUNT_CONFLICT % (path, default)
    return None


def unused_database_volumes(dk: DynaKube, ctx: Context) -> str | None:
    unused = []
    for database in latest.databases(dk):
        mounted = _names(database.get("volumeMounts"))
        unused += [v for v in _names(database.get("volumes")) if v not in mounted]
    return DB_UNUSED_VOLUMES % ", ".join(unused) if unused else None


def host_path_database_volume(dk: DynaKube, ctx: Context) -> str | None:
    for database in latest.databases(dk):
        if any(as_map(v).get("hostPath") is not None for v in as_list(database.get("volumes"))):
            return (
                "Host path database volume detected. If you're on OpenShift, mounting host path volumes will be "
                "prohibited by the SCC and cause silent failures. If you still want to do this, make sure to "
                "create and bind corresponding roles."
            )
    return None


def auto_update_removed(dk: DynaKube) -> bool:
    raw = hub.annotations_of(dk).get(latest.AUTO_UPDATE)
    try:
        return isinstance(raw, str) and isinstance(json.loads(raw), bool)
    except ValueError:
        return False
