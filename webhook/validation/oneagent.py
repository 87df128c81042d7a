"""spec.oneAgent and spec.networkZone."""

from __future__ import annotations

from webhook import dynakube as dk
from webhook.validation.base import Context, DynaKube

FORBIDDEN_NETWORK_ZONE_CHARACTERS = {"\n": "newline", "\t": "tab", "\r": "carriage return", "\x00": "NUL"}


def conflicting_oneagent_modes(dynakube: DynaKube, ctx: Context) -> str | None:
    found = dk.modes(dynakube)
    if len(found) > 1:
        return (
            f"spec.oneAgent sets {len(found)} modes ({', '.join(found)}); only one OneAgent mode can be used "
            f"at a time. Keep exactly one of {', '.join(dk.MODES)}."
        )
    return None


def invalid_network_zone(dynakube: DynaKube, ctx: Context) -> str | None:
    zone = dk.network_zone(dynakube)
    bad = [label for char, label in FORBIDDEN_NETWORK_ZONE_CHARACTERS.items() if char in zone]
    if bad:
        return (
            f"spec.networkZone {zone!r} contains {', '.join(bad)}, which a network zone name cannot hold. "
            "Remove those characters from spec.networkZone."
        )
    return None
