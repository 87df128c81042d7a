"""Kubernetes' label-selector validation with its exact texts (``apimachinery`` ``ValidateLabelSelector`` with
invalid label values not tolerated), as ``field.Error`` strings: ``<path>: <type>[: <value>]: <detail>``."""

from __future__ import annotations

import re
from typing import Any

from webhook.tolerant import as_list, as_map
from webhook.validation.gourl import go_quote

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME = re.compile(_QNAME_FMT)
_QNAME_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
_VALUE = re.compile(f"({_QNAME_FMT})?")
_VALUE_FMT = f"({_QNAME_FMT})?"
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character"
)
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_SUBDOMAIN = re.compile(_SUBDOMAIN_FMT)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character"
)


def _blen(text: str) -> int:
    """Go's ``len``: bytes, not characters."""
    return len(text.encode("utf-8", "surrogatepass"))


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``validation.RegexError``."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    return (
        msg + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"
    )


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def qualified_name_errors(value: str) -> list[str]:
    """``validation.IsQualifiedName``."""
    errs = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if _blen(prefix) > 253:
                errs.append("prefix part " + _max_len(253))
            if not _SUBDOMAIN.fullmatch(prefix):
                errs.append("prefix part " + regex_error(_SUBDOMAIN_MSG, _SUBDOMAIN_FMT, "example.com"))
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QNAME.fullmatch(name):
        errs.append("name part " + regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """``validation.IsValidLabelValue``."""
    errs = []
    if _blen(value) > 63:
        errs.append(_max_len(63))
    if not _VALUE.fullmatch(value):
        errs.append(regex_error(_VALUE_MSG, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _invalid(path: str, value: Any, detail: str) -> str:
    shown = go_quote(value) if isinstance(value, str) else go_quote(str(value))
    return f"{path}: Invalid value: {shown}: {detail}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def selector_errors(selector: Any, path: str) -> list[str]:
    """Every field error of ``selector`` (None or {} has none): matchLabels first, then matchExpressions."""
    selector = as_map(selector)
    errs: list[str] = []
    labels_path = f"{path}.matchLabels"
    for key, value in as_map(selector.get("matchLabels")).items():
        errs += [_invalid(labels_path, key, m) for m in qualified_name_errors(_text(key))]
        if not isinstance(value, str):  # the CRD schema rejects it before us; never a valid selector
            errs.append(_invalid(labels_path, str(value), "must be a string"))
            continue
        errs += [_invalid(labels_path, value, m) for m in label_value_errors(value)]
    for i, expression in enumerate(as_list(selector.get("matchExpressions"))):
        expression = as_map(expression)
        here = f"{path}.matchExpressions[{i}]"
        operator = _text(expression.get("operator"))
        raw_values = as_list(expression.get("values"))
        errs += [
            _invalid(f"{here}.values[{j}]", str(v), "must be a string")
            for j, v in enumerate(raw_values)
            if not isinstance(v, str)
        ]
        values = [_text(v) for v in raw_values]
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    f"{here}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    f"{here}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
        else:
            errs.append(_invalid(f"{here}.operator", operator, "not a valid selector operator"))
        key = _text(expression.get("key"))
        errs += [_invalid(f"{here}.key", key, m) for m in qualified_name_errors(key)]
        for j, value in enumerate(values):
            errs += [_invalid(f"{here}.values[{j}]", value, m) for m in label_value_errors(value)]
    return errs
