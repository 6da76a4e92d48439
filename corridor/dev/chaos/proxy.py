"""A loopback TCP proxy that injects network faults on command (no root, no iptables).

``FaultProxy(target_port)`` listens on 127.0.0.1 and forwards every connection to
the target. While it runs, a test can:

- ``delay(seconds)``: hold every chunk that long before forwarding it (latency);
- ``stall(True)``: stop forwarding in both directions (a black hole: the peers'
  sockets stay open, their requests time out, as with packets silently dropped);
- ``refuse(True)``: reset every new connection as soon as it is accepted;
- ``reset()``: reset (RST, not FIN) every open connection at once.

Only TCP-level faults are possible here: bytes are never dropped from the middle
of a stream (TCP would not do that either; a lost segment is retransmitted, which
a client sees as latency or, past its timeout, as a stall).

Kafka clients connect to the addresses the broker *advertises*, so a proxy in
front of a broker carries the client's traffic only when the broker advertises
the proxy's port (see ``corridor.dev.chaos.proxied_zone``); otherwise it carries the
bootstrap connection and nothing else.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Self

_CHUNK = 65536


@dataclass
class ProxyStats:
    """What went through the proxy (updated by its threads; read for reports)."""

    connections: int = 0
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0  # target -> client
    resets: int = 0
    refused: int = 0
    faults: list[str] = field(default_factory=list)


class FaultProxy:
    """See the module docstring. Use as a context manager, or ``start()``/``close()``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.stats = ProxyStats()
        self._delay_s = 0.0
        self._flowing = threading.Event()
        self._flowing.set()
        self._refuse = False
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._reset_socks: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    # -- control -------------------------------------------------------------------

    def start(self) -> Self:
        self._thread.start()
        return self

    def delay(self, seconds: float) -> None:
        """Hold each forwarded chunk ``seconds`` (0 removes the delay)."""
        self._delay_s = max(0.0, seconds)
        self._note(f"delay {seconds:.3f}s")

    def stall(self, on: bool) -> None:
        """Stop (True) or resume (False) forwarding on every connection."""
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()
        self._note(f"stall {'on' if on else 'off'}")

    def refuse(self, on: bool) -> None:
        """Reset new connections at once (True) or accept them again (False)."""
        self._refuse = on
        self._note(f"refuse {'on' if on else 'off'}")

    def reset(self) -> int:
        """RST every open connection; returns how many pairs were reset."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            self._reset_socks.update((a, b))
            _rst(a)
            _rst(b)
        self.stats.resets += len(pairs)
        self._note(f"reset {len(pairs)} connections")
        return len(pairs)

    def heal(self) -> None:
        """Back to a plain pass-through proxy."""
        self.delay(0)
        self.refuse(False)
        self.stall(False)

    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        try:  # noqa: SIM105 (the comment below says why, which suppress() would hide)
            # close() alone leaves a socket that a thread is blocked in accept() on still
            # listening (Linux): shutdown wakes that accept, so the port is free on return.
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._listener.close()
            if self._thread.is_alive():
                self._thread.join(5)
        finally:
            self.reset()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _note(self, what: str) -> None:
        self.stats.faults.append(f"{time.strftime('%H:%M:%S')} {what}")

    # -- forwarding ----------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            if self._refuse:
                self.stats.refused += 1
                _rst(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                self.stats.refused += 1
                _rst(client)
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.append((client, upstream))
            self.stats.connections += 1
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, up), daemon=True,
                                 name="fault-proxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while True:
                self._flowing.wait()
                data = src.recv(_CHUNK)
                if not data:
                    break
                if self._delay_s:
                    time.sleep(self._delay_s)  # the fault itself: latency on this hop
                self._flowing.wait()  # a stall begun meanwhile holds this chunk too
                if up:  # counted before sending, so a peer that got the bytes sees them counted
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop_pair(src, dst)

    def _drop_pair(self, a: socket.socket, b: socket.socket) -> None:
        with self._lock:
            self._pairs = [p for p in self._pairs if a not in p and b not in p]
        for s in (a, b):
            if s in self._reset_socks:
                continue  # already reset: a FIN now would only muddle it
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def _rst(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST (connection reset), not a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes a thread blocked in recv() on it (close alone would not, on Linux),
        # without sending anything; the close then sends the RST.
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


def free_port(pair: bool = False) -> int:
    """A loopback port free right now (and ``port + 1`` too when ``pair``)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair or _free(port + 1):
            return port
    raise OSError("no free loopback port pair found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
