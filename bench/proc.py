"""Starting the webhook (or the bench-only baseline) as a separate process and reading its CPU and memory."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def pin(cpu: int) -> list[str]:
    """``taskset -c cpu`` when there is more than one core and taskset exists; else nothing."""
    if (os.cpu_count() or 1) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


@dataclass
class Server:
    """One server process: ``baseline`` runs the same stack with a fixed-answer admission app."""

    state_file: Path | None
    work_dir: Path
    baseline: bool = False
    baseline_kind: str = "raw"  # bench.baseline's BENCH_BASELINE: "raw", "route" or "parse"
    log_level: str = "info"
    limit_concurrency: int | None = None
    core: int | None = 0  # None: not pinned
    extra_args: list[str] = field(default_factory=list)
    kubeconfig: Path | None = None  # cluster mode against this API server instead of the state file
    source_root: Path | None = None  # run the webhook package from this tree (another revision)
    env: dict[str, str] = field(default_factory=dict)  # more environment for the process
    port: int = 0
    health_port: int = 0
    metrics_port: int = 0
    startup_seconds: float = 0.0
    log_path: Path | None = None  # the process's stdout and stderr, once started
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        module = "bench.baseline" if self.baseline else "webhook"
        args = [
            *(pin(self.core) if self.core is not None else []),
            sys.executable,
            "-m",
            module,
            *(["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []),
            *(["--state-file", str(self.state_file)] if self.state_file else []),
            "--cert-mode",
            "dev",
            "--certs-dir",
            str(self.work_dir / "certs"),
            "--webhook-host",
            "127.0.0.1",
            "--webhook-port",
            str(self.port),
            "--health-probe-bind-address",
            f"127.0.0.1:{self.health_port}",
            "--metrics-bind-address",
            f"127.0.0.1:{self.metrics_port}",
            "--log-level",
            self.log_level,
            *self.extra_args,
        ]
        if self.limit_concurrency:
            args += ["--limit-concurrency", str(self.limit_concurrency)]
        return args

    def start(self, timeout: float = 30.0) -> float:
        """Start and wait for ``/readyz`` 200; returns (and keeps) the seconds that took."""
        self.port, self.health_port, self.metrics_port = free_port(), free_port(), free_port()
        log_path = self.log_path = (
            self.work_dir / f"server-{'baseline' if self.baseline else 'webhook'}-{self.port}.log"
        )
        root = self.source_root or Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=str(root), BENCH_BASELINE=self.baseline_kind, **self.env)
        if self.kubeconfig:
            env["KUBERNETES_SERVICE_HOST"] = ""  # never the in-cluster configuration of a pod we run in
        start = time.perf_counter()
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=log, env=env, cwd=self.work_dir, start_new_session=True
            )
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} before it was ready; see {log_path}:\n"
                    + log_path.read_text()[-2000:]
                )
            if self._ready():
                self.startup_seconds = time.perf_counter() - start
                return self.startup_seconds
            if time.perf_counter() - start > timeout:
                self.stop()
                raise RuntimeError(f"server not ready after {timeout}s; see {log_path}")
            time.sleep(0.005)

    def _ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.health_port, timeout=1)
            conn.request("GET", "/readyz")
            status = conn.getresponse().status
            conn.close()
            return status == 200
        except OSError:
            return False

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def memory(self) -> dict[str, int]:
        return memory_kib(self.pid)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
