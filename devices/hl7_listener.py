"""HL7 v2 ORU^R01 (IHE PCD-01) over MLLP: a TCP listener for monitor gateways.

Gateways (Philips, Mindray, GE, Nihon Kohden) connect, send one message per MLLP frame and
wait for its ACK before sending the next (docs/protocols.md#hl7).

Concurrency: one accept thread and one thread per connection, at most ``max_connections``
at a time (a connection beyond that is accepted and closed at once, and counted). Threads
because everything a connection does is blocking and sequential anyway: MLLP is "send one,
wait for its ACK", the core's ``ingest`` is a locked call, and the ACK waits for the store's
commit. A bay has tens of chairs and a gateway keeps one or a few connections open, so a
few dozen mostly idle threads cost little; asyncio would still need threads for the core
and the durability wait. The accept thread waits on a selector with a wake-up socket pair,
and :meth:`Hl7Listener.stop` shuts down every open connection (which wakes its blocked
``recv``), so stopping polls nothing and returns within its deadline even with clients
connected. An idle connection is closed after ``idle_timeout_s``, and one whose MLLP frame
has begun but is not complete ``frame_deadline_s`` after its first byte came is closed
then (counted as ``frame_deadline``, logged with the peer), however slowly the peer keeps
trickling bytes: the deadline is the socket's timeout while a frame is open, so a peer
holding half-sent frames cannot keep connection slots from real gateways.

Who may send (:mod:`devices.mllp_tls`; issue 12): with ``tls_cert`` the listener speaks MLLP
over TLS (TLS 1.2 at least), and with ``tls_client_ca`` every peer must present a client
certificate signed by that CA. ``allow`` lists the peer addresses or networks and the
certificate subjects that may send. A peer whose address is not allowed is closed as soon
as it is accepted, before a byte of it is read (``peer_not_allowed``); the TLS handshake
runs in the connection's thread and must be done within ``frame_deadline_s`` (else
``tls_handshake``, as is a failed handshake: a plain-text peer, no client certificate, a
certificate from another CA); a verified certificate whose subject is not allowed is
closed (``peer_not_allowed``). Each refusal is counted and logged with the peer's address
(and subject), and such a peer never gets an ACK: nothing it sends is read.

What is done with each message (parse, chairs, the core, the ACK after the store's commit,
the counted refusals) is :mod:`devices.hl7_messages`; this module holds the server: the
listening socket, the connections and their threads, MLLP framing and its problems, TLS and
the peer policy.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from typing import Any

from devices.hl7_messages import Hl7MessageHandler
from devices.mllp_tls import PeerPolicy, describe_subject, server_context
from monitor.config import Hl7Source
from monitor.seam import Sink, SourceState
from wire.hl7.ack import AckError
from wire.hl7.mllp import MllpDecoder, MllpProblem, frame
from wire.hl7.v2 import read_header

__all__ = ["Hl7Listener"]

RECV_BYTES = 65536


class Hl7Listener(Hl7MessageHandler):
    kind = "hl7"

    def __init__(self, config: Hl7Source, sink: Sink, *, max_connections: int = 64,
                 durable_timeout_s: float = 5.0, stop_timeout_s: float = 5.0) -> None:
        super().__init__(config, sink, durable_timeout_s=durable_timeout_s)
        self.max_connections = max_connections
        self.stop_timeout_s = stop_timeout_s
        self.port: int | None = None
        self.connections_total = 0
        self.idle_timeouts = 0
        self._server: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._tls: ssl.SSLContext | None = None
        self._policy = PeerPolicy.from_config(config)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Bind and listen (``port`` 0: a free port; :attr:`port` says which) and serve in
        background threads. A port that cannot be bound leaves the source FAILED."""
        if self._accept_thread is not None:
            return
        self._stopping.clear()
        self._set_state(SourceState.STARTING)
        self.seed_receipts()
        try:
            self._tls = server_context(self.config)
        except ValueError as exc:
            self._set_state(SourceState.FAILED, f"configuration of {self.name}: {exc}")
            return
        try:
            server = socket.create_server((self.config.host, self.config.port), backlog=128,
                                          reuse_port=False)
        except OSError as exc:
            self._set_state(SourceState.FAILED, f"cannot listen on {self.config.host}:"
                                                f"{self.config.port}: {exc}")
            return
        server.setblocking(False)
        self._server = server
        self.port = server.getsockname()[1]
        self._wake = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(server, selectors.EVENT_READ)
        self._selector.register(self._wake[0], selectors.EVENT_READ)
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=f"hl7-{self.name}-accept")
        self._accept_thread.start()
        self._set_state(SourceState.CONNECTED)
        self.log.info("listening for HL7/MLLP%s on %s:%d%s", " over TLS" if self._tls else "",
                      self.config.host, self.port,
                      " (client certificates required)" if self.config.tls_client_ca else "")
        if self._tls is None and self.config.insecure_plain:
            self.log.warning("MLLP without TLS on %s (insecure_plain): anyone on the network path "
                             "can read and forge vital signs", self.config.host)

    def stop(self) -> None:
        """Close the listening socket and every connection, and join the threads (within
        ``stop_timeout_s``). Messages waiting for durability are answered AR."""
        self._stopping.set()
        deadline = time.monotonic() + self.stop_timeout_s
        try:
            if self._wake is not None:
                with contextlib.suppress(OSError):
                    self._wake[1].send(b"x")
            if self._accept_thread is not None:
                self._accept_thread.join(max(0.0, deadline - time.monotonic()))
            with self._lock:
                conns = dict(self._conns)
                waits = list(self._waits)
            for conn in conns:
                with contextlib.suppress(OSError):  # the socket's, also under TLS: wakes its recv
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
            for w in waits:
                w.event.set()
            for thread in conns.values():
                thread.join(max(0.0, deadline - time.monotonic()))
            if any(t.is_alive() for t in conns.values()):
                self.log.warning("stop: connection threads still running after %g s",
                                 self.stop_timeout_s)
        finally:
            for sock in [self._server, *(self._wake or ())]:
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            if self._selector is not None:
                self._selector.close()
            self._server = self._selector = self._wake = None
            self._accept_thread = None
            self._set_state(SourceState.STOPPED)

    def health(self) -> dict[str, Any]:
        with self._lock:
            open_conns = len(self._conns)
        return super().health() | {
            "host": self.config.host, "port": self.port, "messages": self.messages,
            "connections": open_conns, "connections_total": self.connections_total,
            "idle_timeouts": self.idle_timeouts, "skipped": dict(self.skipped),
            "duplicates": self.duplicates,
            "tls": self._tls is not None, "client_certificates": self.config.tls_client_ca is not None,
        }

    # --- connections ---------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._selector is not None and self._server is not None
        server = self._server
        while not self._stopping.is_set():
            try:
                events = self._selector.select()
            except OSError:
                return
            for key, _ in events:
                if key.fileobj is not server:
                    return  # the wake-up socket: stop() was called
                try:
                    conn, addr = server.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if self._stopping.is_set():
                        return
                    self.log.warning("accept failed: %s", exc)
                    continue
                self._open(conn, f"{addr[0]}:{addr[1]}", addr[0])

    def _open(self, conn: socket.socket, peer: str, host: str = "") -> None:
        if not self._policy.address_allowed(host):
            self.reject("peer_not_allowed", f"{peer}: address not in allow: connection closed")
            conn.close()
            return
        if self._tls is not None:  # no I/O yet: the handshake runs in the connection's thread
            try:
                conn = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            except OSError as exc:  # the peer is gone already: cost it, never the accept thread
                self.log.info("connection from %s lost before TLS: %s", peer, exc)
                conn.close()
                return
        with self._lock:
            refuse = self._stopping.is_set() or len(self._conns) >= self.max_connections
            if not refuse:
                thread = threading.Thread(target=self._serve, args=(conn, peer), daemon=True,
                                          name=f"hl7-{self.name}-{peer}")
                self._conns[conn] = thread
                self.connections_total += 1
        if refuse:
            if not self._stopping.is_set():
                self.reject("too_many_connections",
                            f"{peer}: already {self.max_connections} connections open")
            conn.close()
            return
        self.log.info("connection from %s", peer)
        thread.start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        decoder = MllpDecoder(self.config.max_message_bytes)
        idle_s, deadline_s = self.config.idle_timeout_s, self.config.frame_deadline_s
        frame_due: float | None = None  # time.monotonic() by which the open frame must end
        started = 0  # decoder.frames_started when frame_due was set
        expired = False
        try:
            if isinstance(conn, ssl.SSLSocket):
                peer = self._handshake(conn, peer)
                if peer is None:
                    return
            while not self._stopping.is_set():
                timeout = idle_s if frame_due is None else min(idle_s, frame_due - time.monotonic())
                try:
                    if timeout <= 0:
                        raise TimeoutError
                    conn.settimeout(timeout)
                    data = conn.recv(RECV_BYTES)
                except TimeoutError:
                    expired = frame_due is not None and time.monotonic() >= frame_due
                    if expired:
                        self.reject("frame_deadline", f"{peer}: MLLP frame not complete {deadline_s:g} s "
                                                      f"after it began ({decoder.frame_bytes} bytes so "
                                                      f"far): connection closed")
                    else:
                        with self._lock:
                            self.idle_timeouts += 1
                        self.log.info("connection from %s idle for %g s: closed", peer, idle_s)
                    break
                if not data:
                    break
                received = time.monotonic()
                for item in decoder.feed(data):
                    ack = self.handle_message(item, peer) if isinstance(item, bytes) \
                        else self._problem(item, peer)
                    if ack is not None:
                        conn.sendall(frame(ack))
                if not decoder.in_frame:
                    frame_due = None
                elif frame_due is None or decoder.frames_started != started:
                    frame_due = received + deadline_s  # a frame began in this chunk
                started = decoder.frames_started
        except OSError as exc:
            if not self._stopping.is_set():
                self.log.info("connection from %s lost: %s", peer, exc)
        except Exception:  # a bug here must cost one connection, never the listener
            self.log.exception("connection from %s failed", peer)
        finally:
            problems = decoder.close()
            for problem in problems if not expired else ():  # a frame_deadline is counted once
                self._problem(problem, peer)
            with contextlib.suppress(OSError):
                conn.close()
            with self._lock:
                self._conns.pop(conn, None)
            self.log.info("connection from %s closed", peer)

    def _handshake(self, conn: ssl.SSLSocket, peer: str) -> str | None:
        """The TLS handshake, within ``frame_deadline_s``, and the subject check; the peer's
        name for the logs (with its certificate's subject), None when it is refused."""
        deadline_s = self.config.frame_deadline_s
        try:
            conn.settimeout(deadline_s)
            conn.do_handshake()
        except TimeoutError:
            self.reject("tls_handshake", f"{peer}: TLS handshake not complete within {deadline_s:g} s:"
                                         f" connection closed")
            return None
        except OSError as exc:  # ssl.SSLError too: plain text, no or a foreign certificate
            if not self._stopping.is_set():
                self.reject("tls_handshake", f"{peer}: TLS handshake failed: {exc}")
            return None
        cert = conn.getpeercert()
        subject = describe_subject(cert)
        if not self._policy.subject_allowed(cert):
            self.reject("peer_not_allowed", f"{peer}: certificate subject {subject!r} not in allow: "
                                            f"connection closed")
            return None
        if subject:
            peer = f"{peer} ({subject})"
            self.log.info("connection from %s: TLS %s", peer, conn.version())
        return peer

    def _problem(self, problem: MllpProblem, peer: str) -> str | None:
        """Count a framing problem; the ACK to send for it, if any (an oversized frame is
        answered AR, from its first bytes, so that its sender does not wait or resend)."""
        if problem.reason == "garbage":
            self.reject("mllp_garbage", f"{peer}: {problem.size} bytes outside an MLLP frame "
                                        f"({problem.head[:32]!r})")
            return None
        if problem.reason == "truncated":
            self.reject("truncated", f"{peer}: MLLP frame cut off after {problem.size} bytes")
            return None
        text = (f"message of {problem.size} bytes is longer than the "
                f"{self.config.max_message_bytes} bytes allowed")
        self.reject("too_long", f"{peer}: {text}")
        header = read_header(problem.head.decode("latin-1"))
        return self._ack(header, "AR", [AckError("too_long", text)])
