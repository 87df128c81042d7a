"""metadata.name (``dynakube_name.go``): a DNS-1035 label of at most 40 characters (it prefixes the names of
the objects the operator creates)."""

from __future__ import annotations

import re

from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

MAX_NAME_LENGTH = 40
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

NOT_DNS1035 = (
    "The DynaKube's specification violates DNS-1035.\n"
    "    [a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation "
    "is '[a-z]([-a-z0-9]*[a-z0-9])?')]\n\t"
)
TOO_LONG = (
    "The length limit for the name of a DynaKube is %d, because it is the base for the name of resources related "
    "to the DynaKube. (example: dkName-activegate-<some-hash>)\n\tThe limit is necessary because kubernetes uses "
    "the name of some resources (example: StatefulSet) for the label value, which has a limit of 63 characters. "
    "(see https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set)"
)


def is_dns1035_label(name: str) -> bool:
    return len(name.encode()) <= 63 and bool(_DNS1035.fullmatch(name))


def name_not_dns1035(dk: DynaKube, ctx: Context) -> str | None:
    name = hub.name(dk)
    return NOT_DNS1035 if name and not is_dns1035_label(name) else None


def name_too_long(dk: DynaKube, ctx: Context) -> str | None:
    return TOO_LONG % MAX_NAME_LENGTH if len(hub.name(dk)) > MAX_NAME_LENGTH else None
