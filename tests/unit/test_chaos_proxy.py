"""The fault proxy on loopback, against a tiny echo server: pass, delay, stall, reset, refuse."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from corridor.dev.chaos.proxy import FaultProxy


@pytest.fixture
def echo() -> Iterator[int]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(4096):
                    conn.sendall(data)
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def _client(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    return sock


def test_passes_bytes_both_ways_and_counts_them(echo: int) -> None:
    with FaultProxy(echo) as proxy, _client(proxy) as sock:
        sock.sendall(b"hello")
        assert sock.recv(16) == b"hello"
        assert proxy.stats.connections == 1
        assert proxy.stats.bytes_up == 5 and proxy.stats.bytes_down == 5


def test_delay_holds_each_chunk(echo: int) -> None:
    with FaultProxy(echo) as proxy, _client(proxy) as sock:
        proxy.delay(0.2)
        start = time.monotonic()
        sock.sendall(b"x")
        assert sock.recv(4) == b"x"
        assert time.monotonic() - start >= 0.4  # once up, once down


def test_stall_blackholes_until_healed(echo: int) -> None:
    with FaultProxy(echo) as proxy, _client(proxy, timeout=0.3) as sock:
        proxy.stall(True)
        sock.sendall(b"ping")
        with pytest.raises(TimeoutError):
            sock.recv(4)
        proxy.heal()
        sock.settimeout(2)
        assert sock.recv(4) == b"ping"


def test_reset_sends_rst_to_open_connections(echo: int) -> None:
    with FaultProxy(echo) as proxy, _client(proxy) as sock:
        sock.sendall(b"a")
        assert sock.recv(1) == b"a"
        assert proxy.reset() == 1
        with pytest.raises(ConnectionResetError):
            sock.sendall(b"b")
            sock.recv(1)
        assert proxy.open_connections() == 0 and proxy.stats.resets == 1


def test_refuse_resets_new_connections(echo: int) -> None:
    with FaultProxy(echo) as proxy:
        proxy.refuse(True)
        with pytest.raises((ConnectionResetError, BrokenPipeError)), _client(proxy) as sock:
            sock.sendall(b"x")
            if not sock.recv(1):
                raise ConnectionResetError("closed")
        proxy.refuse(False)
        with _client(proxy) as sock:
            sock.sendall(b"y")
            assert sock.recv(1) == b"y"
        assert proxy.stats.refused == 1


def test_its_port_is_free_again_as_soon_as_it_is_closed(echo: int) -> None:
    """A test after another binds the same fixed port (the one the broker advertises)."""
    with FaultProxy(echo) as proxy, _client(proxy) as sock:
        sock.sendall(b"x")
        assert sock.recv(16) == b"x"
        port = proxy.port
    with FaultProxy(echo, port=port) as again, _client(again) as sock:
        sock.sendall(b"y")
        assert sock.recv(16) == b"y"
