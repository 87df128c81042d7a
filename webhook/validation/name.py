"""metadata.name: a DNS-1035 label of at most 40 characters (it prefixes the names of generated objects)."""

from __future__ import annotations

import re

from webhook import dynakube as dk
from webhook.validation.base import Context, DynaKube

MAX_NAME_LENGTH = 40
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def name_not_dns1035(dynakube: DynaKube, ctx: Context) -> str | None:
    name = dk.name(dynakube)
    if not name or (len(name) <= 63 and _DNS1035.match(name)):
        return None  # a missing name is the API server's to reject
    return (
        f"The DynaKube name {name!r} is not a DNS-1035 label: use lower-case letters, digits and '-', "
        "starting with a letter and ending with a letter or digit (e.g. 'dynakube' or 'prod-eu-1')."
    )


def name_too_long(dynakube: DynaKube, ctx: Context) -> str | None:
    name = dk.name(dynakube)
    if len(name) > MAX_NAME_LENGTH:
        return (
            f"The DynaKube name {name!r} has {len(name)} characters; at most {MAX_NAME_LENGTH} are allowed "
            "because it is the base of the names and label values (63 characters at most) of the objects the "
            "operator creates. Choose a shorter name."
        )
    return None
