"""The gateway side of MLLP, for the simulators and tests: :class:`MllpClient`, a blocking
sender (``send(message)`` returns the ACK's text; like a gateway, it connects again on the
next send after a refused connection or a failure; with an ``ssl_context`` it speaks MLLP over
TLS), :class:`MllpFailover`, the same over several listeners of which one answers (a bay's
two servers: docs/high-availability.md), and :func:`client_context`, a gateway's TLS context.
The framing itself is the wire layer's (:mod:`wire.hl7.mllp`); the listener is :mod:`devices.hl7_listener`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from wire.hl7.mllp import MllpDecoder, frame

__all__ = ["MllpClient", "MllpFailover", "client_context"]


class MllpClient:
    """A blocking MLLP sender (simulators, tests, a gateway stand-in): one TCP connection at
    a time, one message at a time, each answered by an ACK.

    It connects at once when it can; when the listener is not there yet (or after
    :meth:`close`, or a failed send) the next :meth:`send` connects again, as a gateway
    does. ``send`` raises ``TimeoutError`` when no ACK comes within ``timeout`` seconds,
    ``ConnectionError`` when the listener closes the connection first (the connection is
    then dropped), and ``OSError`` when it cannot connect (``ssl.SSLError``, an OSError,
    when the TLS handshake fails).

    ``ssl_context`` (e.g. :func:`client_context`): MLLP over TLS, the
    listener's certificate checked for ``server_hostname`` (default: ``host``)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0, *, encoding: str = "utf-8",
                 max_message_bytes: int = 1 << 20, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None) -> None:
        self.host, self.port, self.timeout, self.encoding = host, port, timeout, encoding
        self.max_message_bytes = max_message_bytes
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or host
        self._sock: socket.socket | None = None
        self._decoder = MllpDecoder(max_message_bytes)
        self._pending: deque[bytes] = deque()
        with contextlib.suppress(OSError):
            self.connect()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def sock(self) -> socket.socket:
        """The current connection (connecting first if there is none)."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        return self._sock

    def connect(self) -> None:
        """Connect now (a no-op when connected). Raises OSError."""
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.ssl_context is not None:
                try:
                    sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
                except OSError:
                    sock.close()
                    raise
            self._sock = sock
            self._decoder = MllpDecoder(self.max_message_bytes)
            self._pending.clear()

    def send(self, message: str) -> str:
        """Send one message and return the text of its ACK."""
        self.send_raw(frame(message, self.encoding))
        return self.receive()

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (a partial frame, garbage, several frames)."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.close()
            raise

    def receive(self) -> str:
        """The next message from the listener (an ACK), waiting up to ``timeout``."""
        while not self._pending:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                self.close()  # a late ACK must not be taken for the next message's
                raise TimeoutError(f"no ACK from {self.host}:{self.port} within {self.timeout} s") \
                    from None
            except OSError:
                self.close()
                raise
            if not data:
                self.close()
                raise ConnectionError(f"{self.host}:{self.port} closed the connection")
            self._pending.extend(m for m in self._decoder.feed(data) if isinstance(m, bytes))
        return self._pending.popleft().decode(self.encoding, errors="replace")

    def close(self) -> None:
        """Close the connection (a later send connects again)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class MllpFailover:
    """A gateway's sender to a bay's two servers (or more): ``endpoints`` ``(host, port)`` of
    MLLP listeners of which one, the leader's, listens (docs/high-availability.md).

    :meth:`send` sends to the endpoint that answered last; when it refuses the connection,
    closes it, or sends no ACK within ``timeout``, the message goes to the next endpoint, and
    so on once round all of them; when none answers it raises the last endpoint's OSError
    and the caller sends the message again later (a message whose ACK did not come back is
    never taken as delivered). ``timeout`` and ``ssl_context`` are :class:`MllpClient`'s,
    for every endpoint; only the current endpoint is kept connected."""

    def __init__(self, endpoints: Sequence[tuple[str, int]], timeout: float = 5.0, *,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if not endpoints:
            raise ValueError("MllpFailover needs at least one (host, port)")
        self.clients = [MllpClient(host, port, timeout, ssl_context=ssl_context) for host, port in endpoints]
        for client in self.clients[1:]:
            client.close()
        self.current = 0
        self.failovers = 0

    @property
    def endpoint(self) -> tuple[str, int]:
        """The endpoint the next message goes to first."""
        client = self.clients[self.current]
        return client.host, client.port

    def send(self, message: str) -> str:
        """Send one message and return its ACK's text, from whichever endpoint answers."""
        error: OSError | None = None
        for _ in self.clients:
            client = self.clients[self.current]
            try:
                return client.send(message)
            except OSError as exc:  # refused, closed, no ACK in time, TLS refused
                error = exc
                client.close()
                if len(self.clients) > 1:
                    self.current = (self.current + 1) % len(self.clients)
                    self.failovers += 1
        assert error is not None
        raise error

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> MllpFailover:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def client_context(ca: Path | str, cert: Path | str | None = None,
                   key: Path | str | None = None) -> ssl.SSLContext:
    """A gateway's TLS context: verifies the listener against ``ca`` (and its name or
    address), presents ``cert`` (and ``key``) when given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        ctx.load_cert_chain(str(cert), None if key is None else str(key))
    return ctx
