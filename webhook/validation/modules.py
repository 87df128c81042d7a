"""Which modules the paired operator installation has (upstream's ``modules.json``, ``pkg/util/installconfig``).

The operator's Helm chart writes a JSON object of booleans; the webhook reads it once at start. Upstream's
rules: unset or empty, or not valid JSON for the object: **every module enabled**; a valid object: missing keys
are **disabled**; keys match case-insensitively (the last duplicate wins); JSON ``null`` leaves all disabled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

# JSON key -> attribute
KEYS = {
    "csiDriver": "csi_driver",
    "activeGate": "active_gate",
    "oneAgent": "one_agent",
    "extensions": "extensions",
    "logMonitoring": "log_monitoring",
    "edgeConnect": "edge_connect",
    "supportability": "supportability",
    "kspm": "kspm",
    "kubernetesMonitoring": "kubernetes_monitoring",  # read by the v1.10 checks only
}


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members, in order (duplicates kept)."""


@dataclass(frozen=True)
class Modules:
    csi_driver: bool = True
    active_gate: bool = True
    one_agent: bool = True
    extensions: bool = True
    log_monitoring: bool = True
    edge_connect: bool = True
    supportability: bool = True
    kspm: bool = True
    kubernetes_monitoring: bool = True

    @classmethod
    def parse(cls, text: str | None) -> Modules:
        """Upstream's reading of ``modules.json`` (see the module docstring); never raises."""
        if not text:
            return cls()
        try:
            pairs = json.loads(text, object_pairs_hook=_Pairs)
        except ValueError:
            return cls()
        if pairs is None:
            return cls(**dict.fromkeys(KEYS.values(), False))
        if not isinstance(pairs, _Pairs):
            return cls()  # a JSON array, string, number or boolean cannot fill the object
        values = dict.fromkeys(KEYS.values(), False)
        by_lower = {k.lower(): attr for k, attr in KEYS.items()}
        for key, value in pairs:
            attr = by_lower.get(key.lower())
            if attr is None:
                continue
            if value is None:
                continue  # JSON null leaves a boolean as it is
            if not isinstance(value, bool):
                return cls()  # a type error makes upstream fall back to the default
            values[attr] = value
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps({key: getattr(self, attr) for key, attr in KEYS.items()})

    def disabled(self) -> list[str]:
        attrs = {f.name for f in fields(self) if not getattr(self, f.name)}
        return [key for key, attr in KEYS.items() if attr in attrs]


def describe(modules: Any) -> str:
    """A log line: which modules are disabled."""
    disabled = modules.disabled() if isinstance(modules, Modules) else []
    return "all modules enabled" if not disabled else "disabled modules: " + ", ".join(disabled)
