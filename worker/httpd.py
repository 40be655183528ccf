"""The HTTP server behind ``/metrics``, ``/healthz``, ``/readyz`` and the status page: idle or slow clients
cannot exhaust it, and it answers only to the Host names it expects.

* **Request heads are read without a thread per connection.** One selector thread accepts connections
  and reads each request head (at most :data:`HEAD_BYTES`, within ``head_timeout_s`` of the accept, else
  the connection is closed). An idle or trickling connection costs a file descriptor, never a thread.
* **Open connections are bounded.** At most ``max_pending`` connections wait for their head; when one more
  arrives, the one waiting longest is closed to make room, so a new client (the orchestrator's
  ``/healthz`` probe) is always read however many idle sockets are open.
* **A fixed pool answers.** Complete requests go to ``workers`` threads; at most ``max_queued`` more wait
  for one (beyond, the request gets 503 at once). Sockets carry a timeout of ``io_timeout_s``, so a
  client that does not read its answer frees its thread.
* **Host allow-list (DNS rebinding).** A request whose ``Host`` header names anything but an IP address,
  a loopback name (:data:`LOOPBACK_NAMES`), the bind address or a name of the allow-list (the worker's
  ``--metrics-allowed-host``; ``*`` accepts any) gets 403: a web page that rebinds its own name to this
  address reaches the server under that name, never under an IP address. A request without ``Host``
  (HTTP/1.0) is answered.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")  # always accepted as Host, with the bind address
HEAD_BYTES = 16_384  # longest request head (request line and headers) read
HEAD_TIMEOUT_S = 10.0  # a connection whose head is not complete this long after the accept is closed
IO_TIMEOUT_S = 10.0  # socket timeout while answering (a client that does not read frees its thread)
WORKERS = 4  # threads answering complete requests
MAX_QUEUED = 32  # complete requests waiting for a thread; beyond, 503 at once
MAX_PENDING = 256  # connections waiting for their head; beyond, the oldest is closed


def _host_name(header: str) -> str:
    """The host part of a ``Host`` header (no port, no IPv6 brackets), lower case."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    if h.count(":") == 1:
        return h.split(":", 1)[0]
    return h


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostRule:
    """Which ``Host`` headers are answered: IP addresses, loopback names, the bind address and ``extra``."""

    def __init__(self, bind: str, extra: Iterable[str] = ()) -> None:
        names = {n.strip().lower() for n in (*LOOPBACK_NAMES, bind, *extra) if n.strip()}
        self.any = "*" in names
        self.names = frozenset(_host_name(n) for n in names)

    def allows(self, header: str | None) -> bool:
        if header is None or self.any:
            return True
        name = _host_name(header)
        return name in self.names or _is_ip(name)


class GuardedHandler(BaseHTTPRequestHandler):
    """A request handler for :class:`BoundedHTTPServer`: reads the head the server read, checks ``Host``."""

    def setup(self) -> None:
        conn, head = self.request  # the socket already carries the server's timeout
        self.request = conn
        super().setup()
        self.rfile = io.BytesIO(head)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        host = self.headers.get("Host")
        assert isinstance(self.server, BoundedHTTPServer)
        if self.server.hosts.allows(host):
            return True
        shown = repr(str(host)[:100])
        body = (
            f"Host {shown} is not served here (DNS rebinding guard). Fix: reach this server by IP address or "
            "localhost, or add the name with --metrics-allowed-host.\n"
        ).encode("utf-8", "replace")
        self.send_response(403)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        return False

    def log_message(self, format: str, *args: Any) -> None:
        pass


class BoundedHTTPServer:
    """An HTTP/1.0 server on ``(host, port)`` answering with ``handler`` (a :class:`GuardedHandler`).

    ``start()`` runs it on a thread; ``stop()`` ends that thread and the pool and closes every socket.
    """

    def __init__(
        self,
        address: tuple[str, int],
        handler: Callable[..., GuardedHandler],
        *,
        allowed_hosts: Iterable[str] = (),
        workers: int = WORKERS,
        max_queued: int = MAX_QUEUED,
        max_pending: int = MAX_PENDING,
        head_timeout_s: float = HEAD_TIMEOUT_S,
        io_timeout_s: float = IO_TIMEOUT_S,
    ) -> None:
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]
        self.handler = handler
        self.hosts = HostRule(host, allowed_hosts)
        self.max_queued, self.max_pending = workers + max_queued, max_pending
        self.head_timeout_s, self.io_timeout_s = head_timeout_s, io_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lmr-http")
        self._busy = threading.Semaphore(self.max_queued)
        self._pending: dict[socket.socket, tuple[bytearray, float]] = {}  # insertion order = age
        self._answering: set[socket.socket] = set()  # connections a pool thread is answering
        self._answering_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="lmr-http-accept", daemon=True)

    # -- the selector thread ---------------------------------------------------

    def start(self) -> BoundedHTTPServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.socket, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping:
                for key, _ in sel.select(self._next_expiry()):
                    if key.fileobj is self.socket:
                        self._accept(sel)
                    elif isinstance(key.fileobj, socket.socket):
                        self._read(sel, key.fileobj)
                self._expire(sel)
        finally:
            for conn in list(self._pending):
                self._drop(sel, conn)
            sel.close()

    def _next_expiry(self) -> float:
        if not self._pending:
            return 1.0
        oldest = next(iter(self._pending.values()))[1]
        return max(0.0, min(1.0, oldest - time.monotonic()))

    def _accept(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: keep serving the open ones
                log.warning("metrics server: accept failed: %s", exc)
                return
            if len(self._pending) >= self.max_pending:
                self._drop(sel, next(iter(self._pending)))  # the connection waiting longest makes room
            conn.setblocking(False)
            self._pending[conn] = (bytearray(), time.monotonic() + self.head_timeout_s)
            sel.register(conn, selectors.EVENT_READ)

    def _read(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        entry = self._pending.get(conn)
        if entry is None:
            return
        buf = entry[0]
        try:
            data = conn.recv(HEAD_BYTES + 4 - len(buf))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sel, conn)
            return
        buf += data
        if b"\r\n\r\n" in buf or b"\n\n" in buf:
            sel.unregister(conn)
            del self._pending[conn]
            self._dispatch(conn, bytes(buf))
        elif len(buf) > HEAD_BYTES:
            self._drop(sel, conn, b"HTTP/1.0 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n")

    def _expire(self, sel: selectors.BaseSelector) -> None:
        now = time.monotonic()
        while self._pending:
            conn, (_, deadline) = next(iter(self._pending.items()))
            if deadline > now:
                return
            self._drop(sel, conn, b"HTTP/1.0 408 Request Timeout\r\nConnection: close\r\n\r\n")

    def _drop(self, sel: selectors.BaseSelector, conn: socket.socket, answer: bytes = b"") -> None:
        self._pending.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(conn)
        if answer:
            with contextlib.suppress(OSError):
                conn.send(answer)  # best effort, never blocks (non-blocking socket)
        conn.close()

    # -- the pool ------------------------------------------------------------------

    def _dispatch(self, conn: socket.socket, head: bytes) -> None:
        if not self._busy.acquire(blocking=False):
            with contextlib.suppress(OSError):
                conn.send(b"HTTP/1.0 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\r\n")
            conn.close()
            return
        try:
            future = self._pool.submit(self._answer, conn, head)
        except RuntimeError:  # the pool is shutting down
            self._busy.release()
            conn.close()
            return

        def cancelled(f: Future[None]) -> None:  # stop() cancelled it before a thread took it
            if f.cancelled():
                conn.close()
                self._busy.release()

        future.add_done_callback(cancelled)

    def _answer(self, conn: socket.socket, head: bytes) -> None:
        with self._answering_lock:
            self._answering.add(conn)
        try:
            conn.setblocking(True)
            conn.settimeout(self.io_timeout_s)
            self.handler((conn, head), conn.getpeername(), self)
        except OSError:
            pass  # the client went away or stopped reading: nothing to answer
        except Exception:  # a handler bug must not end the pool's thread
            log.exception("metrics server: a request failed")
        finally:
            with self._answering_lock:
                self._answering.discard(conn)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()
            self._busy.release()

    # -- stopping --------------------------------------------------------------

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, close waiting connections, cut off answers still being written, end every thread."""
        self._stopping = True
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        with self._answering_lock:
            for conn in self._answering:  # a client that does not read would hold stop() for the socket timeout
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.socket.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
