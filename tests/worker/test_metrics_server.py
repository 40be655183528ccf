"""The metrics/status server against real clients on loopback: idle and trickling sockets, slow readers,
and Host headers a DNS-rebinding page would send."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.httpd import HostRule
from worker.metrics import Health, Metrics, MetricsServer


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    srv = MetricsServer(Metrics(), Health(), "127.0.0.1", 0, allowed_hosts=("prometheus.internal",))
    srv.server.head_timeout_s = 1.0
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def get(port: int, path: str, host: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if host is None:
            conn.request("GET", path)
        else:
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", host)
            conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def idle_sockets(port: int, n: int, first_bytes: bytes = b"") -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if first_bytes:
            s.sendall(first_bytes)
        out.append(s)
    return out


def test_healthz_answers_while_many_idle_and_trickling_sockets_are_open(server: MetricsServer) -> None:
    threads_before = threading.active_count()
    idle = idle_sockets(server.port, 300)  # more than the pool and more than the pending limit
    trickling = idle_sockets(server.port, 50, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    try:
        t0 = time.monotonic()
        status, body = get(server.port, "/healthz")
        took = time.monotonic() - t0
        assert (status, body) == (200, b"ok\n")
        assert took < 2.0, f"/healthz took {took:.1f}s behind 350 idle sockets"
        # no thread per connection: the pool and the accept thread only
        assert threading.active_count() <= threads_before + 5, threading.enumerate()
    finally:
        for s in idle + trickling:
            s.close()


def test_an_idle_connection_is_closed_after_the_head_timeout(server: MetricsServer) -> None:
    (s,) = idle_sockets(server.port, 1, b"GET /healthz HTTP/1.1\r\n")  # the head never ends
    try:
        s.settimeout(5)
        t0 = time.monotonic()
        data = s.recv(1024)
        took = time.monotonic() - t0
        assert data.startswith(b"HTTP/1.0 408"), data
        assert 0.5 < took < 4.0
        assert s.recv(1024) == b"", "closed after the 408"
    finally:
        s.close()


def test_clients_that_never_read_do_not_hold_the_pool() -> None:
    """Twice as many clients as the pool ask for a ~3 MB /metrics and never read it: the socket timeout frees
    each thread, and /healthz is answered meanwhile."""
    m = Metrics()
    for i in range(1_500):  # long label values: a large page that renders fast
        m.committed.labels(f"t{i}-" + "x" * 2_000, "0").set(i)
    srv = MetricsServer(m, Health(), "127.0.0.1", 0)
    srv.server.io_timeout_s = 0.5
    srv.start()
    silent = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            silent.append(s)
        time.sleep(0.5)  # every thread of the pool is now blocked writing to a client that does not read
        t0 = time.monotonic()
        assert get(srv.port, "/healthz", timeout=10)[0] == 200
        took = time.monotonic() - t0
        print(f"/healthz answered after {took:.2f}s behind 8 clients that do not read")
        assert took < 3.0  # blocked for good without the socket timeout
    finally:
        for s in silent:
            s.close()
        srv.stop()


@pytest.mark.parametrize(
    "host, code",
    [
        ("evil.example", 403),
        ("evil.example:9108", 403),
        ("localhost.evil.example", 403),
        ("localhost:9108", 200),
        ("LOCALHOST", 200),
        ("127.0.0.1:9108", 200),
        ("[::1]:9108", 200),
        ("10.1.2.3:9108", 200),  # Prometheus scraping by address (compose DNS SD, Kubernetes pods)
        ("prometheus.internal:9108", 200),  # --metrics-allowed-host
    ],
)
def test_only_expected_host_names_are_answered(server: MetricsServer, host: str, code: int) -> None:
    for path in ("/metrics", "/healthz", "/status.json"):
        status, body = get(server.port, path, host)
        assert status == code, (path, host, body)
        if code == 403:
            assert b"--metrics-allowed-host" in body and b"evil.example" in body


def test_a_request_without_host_is_answered(server: MetricsServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"ok\n")


def test_an_oversized_head_gets_431() -> None:
    srv = MetricsServer(Metrics(), Health(), "127.0.0.1", 0).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 40_000)
            assert s.recv(1024).startswith(b"HTTP/1.0 431")
        assert get(srv.port, "/healthz")[0] == 200
    finally:
        srv.stop()
    with pytest.raises(OSError):
        get(srv.port, "/healthz", timeout=1)


def test_a_bind_name_and_star_extend_the_allow_list() -> None:
    assert HostRule("worker-0.lmr", ()).allows("worker-0.lmr:9108")
    assert not HostRule("0.0.0.0", ()).allows("worker-0.lmr:9108")
    assert HostRule("0.0.0.0", ("*",)).allows("anything.example")


NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z0-9-]{1,8}){0,3}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(NAMES, st.one_of(st.none(), st.integers(1, 65535)), st.text(max_size=60))
def test_a_host_name_is_answered_exactly_when_it_is_on_the_list(name: str, port: int | None, junk: str) -> None:
    allowed = {"localhost", "prometheus.internal"}
    rule = HostRule("0.0.0.0", ("prometheus.internal",))
    header = name if port is None else f"{name}:{port}"
    assert rule.allows(header) == (name in allowed)
    assert rule.allows(header.upper()) == (name in allowed)
    assert isinstance(rule.allows(junk), bool)  # any header value: an answer, never an exception


def test_the_allow_list_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.cli import run_cmd
    from worker.settings import WorkerSettings

    def allowed(args: list[str]) -> tuple[str, ...]:
        ctx = run_cmd.make_context("run", ["--model", "registry/m", *args])
        return WorkerSettings.from_params(ctx.params).metrics_allowed_hosts

    assert allowed([]) == ()
    monkeypatch.setenv("LMR_METRICS_ALLOWED_HOST", "prom.internal worker.lmr")
    assert allowed([]) == ("prom.internal", "worker.lmr")
    assert allowed(["--metrics-allowed-host", "a.example", "--metrics-allowed-host", "b.example"]) == (
        "a.example",
        "b.example",
    )
    srv = MetricsServer(Metrics(), Health(), "0.0.0.0", 0, allowed_hosts=allowed([]))
    try:
        assert srv.server.hosts.allows("worker.lmr:9108") and not srv.server.hosts.allows("evil.example")
    finally:
        srv.stop()


def test_stop_cuts_off_answers_to_clients_that_do_not_read() -> None:
    """A worker stopping must not wait out the socket timeout of a client that does not read its answer."""
    m = Metrics()
    for i in range(1_500):
        m.committed.labels(f"t{i}-" + "x" * 2_000, "0").set(i)
    srv = MetricsServer(m, Health(), "127.0.0.1", 0)
    srv.server.io_timeout_s = 60.0
    srv.start()
    silent = []
    for _ in range(4):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        silent.append(s)
    time.sleep(0.5)
    t0 = time.monotonic()
    srv.stop()
    took = time.monotonic() - t0
    for s in silent:
        s.close()
    assert took < 3.0, f"stop() took {took:.1f}s"
    assert not [t.name for t in threading.enumerate() if t.name.startswith("lmr-http")]
