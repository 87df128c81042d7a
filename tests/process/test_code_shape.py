"""The code stays readable in pieces: no function in ``webhook/`` longer than 80 lines, no class longer than 300,
and one Lease name for leader election."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "webhook"
MAX_FUNCTION = 80
MAX_CLASS = 300


def _lengths() -> list[tuple[int, str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                found.append((length, kind, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return found


def test_no_function_longer_than_80_lines_and_no_class_longer_than_300() -> None:
    found = _lengths()
    assert found, "no code found"
    too_long = [f for f in found if f[0] > (MAX_CLASS if f[1] == "class" else MAX_FUNCTION)]
    assert too_long == [], too_long


def test_one_lease_name_in_the_code() -> None:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        names.update(re.findall(r'"(dynatrace-webhook[a-z-]*)"', path.read_text()))
    leases = {n for n in names if "lease" in n or n.endswith(("-reinject", "-initsecrets"))}
    assert leases == set(), leases
    from webhook.manager import LEASE_NAME

    assert LEASE_NAME == "dynatrace-webhook"
