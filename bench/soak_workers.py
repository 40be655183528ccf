"""Worker processes of the soak benchmark: start, ``kill -9``, restart what exits, and their memory.

Each :class:`WorkerSlot` is one ``lmr-worker run`` process at a time (a restarted worker takes the same
slot, log and metrics port), as a process supervisor (systemd, Kubernetes) would run it. An exit the soak
did not cause is recorded with its code and the end of the worker's log, then the worker is restarted.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO
from lmr.environment import offline_env
from worker.broker import free_port

READY_TIMEOUT_S = 600.0  # model load and group join of a worker on a loaded machine
RESTART_DELAY_S = 1.0  # a supervisor's pause before starting a worker again


def rss_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (peak) of a process in MiB, from /proc; empty where unavailable."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = round(int(rest.split()[0]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return out


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def metric(port: int, name: str) -> str:
    """The first line of a worker's /metrics that starts with ``name``, or ""."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            for line in r.read().decode("utf-8", "replace").splitlines():
                if line.startswith(name):
                    return str(line)
    except OSError:
        pass
    return ""


@dataclass
class WorkerSlot:
    """One supervised worker: the command (without the metrics port), its process, log, kills and exits."""

    name: str
    args: list[str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    exits: list[dict[str, Any]] = field(default_factory=list)  # exits the soak did not cause
    rss_start: dict[str, float] = field(default_factory=dict)
    rss_end: dict[str, float] = field(default_factory=dict)
    _down_since: float | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "worker.cli", "run", *self.args, "--metrics-port", str(self.port)]
        env = offline_env()
        with self.log.open("ab") as f:
            f.write(f"\n=== soak: start {self.starts + 1} of {self.name} ===\n".encode())
            f.flush()
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        self.starts += 1
        self._down_since = None

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"worker {self.name} exited with {self.proc.returncode} at start:\n{self.tail()}")
            if ready(self.port):
                return
            time.sleep(0.3)
        raise SystemExit(f"worker {self.name} was not ready within {timeout_s:.0f}s:\n{self.tail()}")

    def kill(self) -> None:
        """``kill -9`` and start again at once."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1
        self.start()

    def supervise(self, now: float, t0: float) -> None:
        """Record an exit the soak did not cause, and restart the worker after :data:`RESTART_DELAY_S`."""
        if self.proc is None or self.proc.poll() is None:
            return
        if self._down_since is None:
            self._down_since = now
            self.exits.append({"at_s": round(now - t0, 1), "code": self.proc.returncode, "log_tail": self.tail()})
        if now - self._down_since >= RESTART_DELAY_S:
            self.start()

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM and wait (SIGKILL past ``timeout_s``); the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, chars: int = 2_000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def rss(self) -> dict[str, float]:
        return rss_mb(self.proc.pid) if self.proc is not None and self.proc.poll() is None else {}

    def summary(self) -> dict[str, Any]:
        return {
            "starts": self.starts,
            "kills": self.kills,
            "rss_start_mb": self.rss_start.get("VmRSS"),
            "rss_end_mb": self.rss_end.get("VmRSS"),
            "rss_peak_mb": self.rss_end.get("VmHWM"),
            "unexpected_exits": self.exits,
        }
