"""Durations as the flags take and show them (``--ca-validity 365d``): ``parse_duration``, ``format_duration``.

Pure and light: the command line reads them before anything else loads (``webhook.tls.certs`` re-exports them).
"""

from __future__ import annotations

import datetime as dt
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)", re.IGNORECASE)
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+|\d+(?:\.\d+)?", re.IGNORECASE)
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> dt.timedelta:
    """``365d``, ``12h``, ``30m``, ``10s``, ``250ms``, ``1h30m`` or plain seconds (``90``) -> timedelta."""
    value = text.strip().replace(" ", "")
    if not _DURATION.fullmatch(value):
        raise ValueError(
            f"duration {text!r} is not understood: use a number with a unit d, h, m, s or ms "
            "(e.g. 365d, 12h, 1h30m, 90s) or plain seconds"
        )
    parts = _DURATION_PART.findall(value)
    total = sum(float(n) * _UNITS[u.lower()] for n, u in parts) if parts else float(value)
    if total <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return dt.timedelta(seconds=total)


def format_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return sign + ("".join(parts) or "0s")
