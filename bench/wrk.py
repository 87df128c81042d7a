"""Closed-loop throughput with Debian's ``wrk`` (``apt-get install -y wrk``) and a Lua script POSTing bodies."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

LUA = """
local bodies = {}
local n = 0
local path = "/inject"

function init(args)
  path = args[1]
  for k = 2, #args do
    local f = assert(io.open(args[k], "rb"))
    bodies[#bodies + 1] = f:read("*a")
    f:close()
  end
end

function request()
  n = n + 1
  local body = bodies[(n % #bodies) + 1]
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def available() -> bool:
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return round(float(m.group(1)) * _UNITS[m.group(2)], 3)


def parse(output: str) -> dict:
    out: dict = {"tool": "wrk"}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", output)
    out["rps"] = float(m.group(1)) if m else 0.0
    for q, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{q}%\s+(\S+)", output, re.MULTILINE)
        out[key] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return out


def run(
    url: str, path: str, bodies: list[Path], *, connections: int, duration: float, script_dir: Path
) -> dict:
    script = script_dir / "post.lua"
    script.write_text(LUA)
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        path,
        *map(str, bodies),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    result = parse(proc.stdout)
    result["connections"] = connections
    result["duration_s"] = duration
    return result
