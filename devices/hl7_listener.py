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

For each message (parsing in :mod:`wire.hl7.pcd01`):

1. Parse. A message that cannot be taken (not HL7, no MSH, malformed, not ORU^R01, more
   OBX segments than ``max_observations``) is answered **AR** (application reject: the
   message itself is not accepted, none of it is stored; the HL7 table 0357 code says why:
   100/101/102 malformed, 200/201 unsupported type or event, 207 too many observations).
2. Map each observation to a chair: PV1-3 (as sent) through ``config.beds`` first, then
   the observation's OBX-18 equipment id, then MSH-3, through ``config.devices`` (each
   tried as sent and by each of its components, e.g. the EUI-64 alone).
3. Refuse observations with no chair (``unknown_chair``) and demo-mode ones (OBX-8 DEMO,
   ``demo``) unless ``accept_demo``; hand the rest to the core as one batch (one Reading
   per observation: device = the OBX-18 id, else the MSH-3 one (its EUI-64 when typed so),
   seq None, device_time = the observation time, receive_time = ``sink.clock.now()``,
   flags with DEMO when accepted).
4. Answer. **AA** when the core accepted at least one reading, or when the message carried
   no measurement at all (device rows, values not measured); readings refused alongside are
   listed in ERR segments of severity W. **AE** (application error: the message was
   understood but its content refused; resending it unchanged will not help) when every
   observation was refused: wrong unit, bad value or time, unknown chair, demo, or the
   core's checks (implausible, too old, in the future), one ERR per reason. **AR** 207
   ("not_durable", the sender should send again) when the readings were not confirmed on
   disk in time, or on an internal error.

Durability: AA is sent only once the store has committed the accepted readings
(``sink.on_durable(ticket, ...)``, waited for up to ``durable_timeout_s``), so a message the
gateway saw acknowledged survives a crash of Chairside right after. When the commit does
not come in time the readings are still in the core (and most likely committed a moment
later) but the answer is AR, so the gateway sends the message again; a duplicate reading
is the price of never losing an acknowledged one. At the store's commit interval (200 ms
by default) an ACK takes up to that long, which is within what gateways wait (seconds).

Every problem is counted with :meth:`reject` (its reason is the counter key): the parse
reasons, per-observation reasons, ``unknown_chair``, ``demo``, ``too_long`` (MLLP frame
over ``max_message_bytes``, answered AR when its MSH is readable), ``mllp_garbage`` (bytes
outside a frame), ``truncated`` (a frame cut off by a disconnect), ``too_many_connections``,
``frame_deadline``, ``not_durable``, ``internal``. Values not measured and codes Chairside
does not use are counted in ``health()["skipped"]``, not as problems. Nothing a client
sends closes the listener.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from devices.mllp_tls import PeerPolicy, describe_subject, server_context
from devices.source import SourceBase
from monitor.config import Hl7Source
from monitor.readings import QualityFlag, Reading
from monitor.seam import Sink, SourceState
from wire.hl7.ack import AckError, build_ack
from wire.hl7.mllp import MllpDecoder, MllpProblem, frame
from wire.hl7.pcd01 import Hl7ParseError, Observation, Pcd01Message, parse_pcd01
from wire.hl7.v2 import MessageHeader, id_candidates, read_header

__all__ = ["Hl7Listener"]

RECV_BYTES = 65536
MAX_DEVICE_ID = 64
# HL7 table 0357 codes for the refusal reasons (ERR-3); anything else is 207
_HL7_CODES = {"wrong_unit": "103", "code_mismatch": "103", "bad_value": "102", "bad_time": "102",
              "unknown_chair": "204"}


@dataclass(slots=True, eq=False)
class _DurableWait:
    event: threading.Event = field(default_factory=threading.Event)
    done: bool = False


class Hl7Listener(SourceBase):
    kind = "hl7"

    def __init__(self, config: Hl7Source, sink: Sink, *, max_connections: int = 64,
                 durable_timeout_s: float = 5.0, stop_timeout_s: float = 5.0) -> None:
        super().__init__(config.name, sink)
        self.config = config
        self.max_connections = max_connections
        self.durable_timeout_s = durable_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port: int | None = None
        self.skipped: Counter[str] = Counter()  # not_measured, unknown_code: not problems
        self.messages = 0
        self.connections_total = 0
        self.idle_timeouts = 0
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._waits: set[_DurableWait] = set()
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

    # --- messages ------------------------------------------------------------------------

    def handle_message(self, payload: bytes | str, peer: str = "") -> str:
        """Take one message (the payload of one MLLP frame) and return its ACK's text."""
        with self._lock:
            self.messages += 1
        try:
            msg = parse_pcd01(payload, self.config.max_observations)
        except Hl7ParseError as exc:
            self.reject(exc.reason, f"{peer}: {exc}")
            return self._ack(exc.header, "AR", [AckError(exc.reason, str(exc), exc.hl7_code)])
        try:
            return self._take(msg, peer)
        except Exception as exc:  # the store closed under us, a bug: the sender may retry
            self.log.exception("message %s from %s failed", msg.control_id, peer)
            self.reject("internal", f"{peer}: message {msg.control_id}: {exc!r}")
            return self._ack(msg.header, "AR", [AckError("internal", f"internal error: {exc}")])

    def _take(self, msg: Pcd01Message, peer: str) -> str:
        with self._lock:
            self.skipped["not_measured"] += msg.not_measured
            self.skipped["unknown_code"] += msg.unknown_codes
        errors = [AckError(r.reason, r.detail, _HL7_CODES.get(r.reason, "207"), "E", r.location)
                  for r in msg.rejections]
        for r in msg.rejections:
            self.reject(r.reason, f"{peer}: message {msg.control_id}: {r.detail}")
        now = float(self.sink.clock.now())
        readings: list[Reading] = []
        taken: list[Observation] = []
        comp = msg.header.component_sep
        for obs in msg.observations:
            where = f"OBX^{obs.segment}"
            chair = self._chair(msg, obs)
            if chair is None:
                text = (f"no chair configured for PV1-3 {msg.bed!r}, OBX-18 {obs.equipment or ''!r}"
                        f" or MSH-3 {msg.sending_application!r}")
                self.reject("unknown_chair", f"{peer}: message {msg.control_id}: {text}")
                errors.append(AckError("unknown_chair", text, "204", "E", "PV1^1^3"))
                continue
            if obs.flags & QualityFlag.DEMO and not self.config.accept_demo:
                text = f"OBX {obs.segment} ({obs.parameter}): device in demo mode (OBX-8 DEMO)"
                self.reject("demo", f"{peer}: message {msg.control_id}: {text}")
                errors.append(AckError("demo", text, "207", "E", f"{where}^8"))
                continue
            device = _short_id(obs.equipment, comp) or _short_id(msg.sending_application, comp) \
                or self.name
            readings.append(Reading(chair, obs.parameter, obs.value, obs.time, now, device,
                                    None, obs.flags))
            taken.append(obs)
        accepted = 0
        if readings:
            with self._deliver_lock:
                result = self.deliver(readings)
            accepted = result.accepted
            for index, reason in result.rejected:
                obs = taken[index]
                errors.append(AckError(
                    reason.value, f"OBX {obs.segment} ({obs.parameter} {obs.value:g}): refused "
                                  f"by the monitor: {reason.value}", "207", "E", f"OBX^{obs.segment}"))
            if accepted and not self._wait_durable(result.ticket):
                why = "the listener is stopping" if self._stopping.is_set() \
                    else f"not confirmed on disk within {self.durable_timeout_s:g} s"
                text = f"readings {why}: send the message again"
                self.reject("not_durable", f"{peer}: message {msg.control_id}: {text}")
                return self._ack(msg.header, "AR", [AckError("not_durable", text)])
        if accepted or not errors:
            warnings = [AckError(e.reason, e.text, e.hl7_code, "W", e.location) for e in errors]
            return self._ack(msg.header, "AA", warnings)
        return self._ack(msg.header, "AE", errors)

    def _chair(self, msg: Pcd01Message, obs: Observation) -> str | None:
        if msg.bed and msg.bed in self.config.beds:
            return self.config.beds[msg.bed]
        comp = msg.header.component_sep
        for key in (*id_candidates(obs.equipment, comp), *id_candidates(msg.sending_application, comp)):
            if key in self.config.devices:
                return self.config.devices[key]
        return None

    def _wait_durable(self, ticket: int | None) -> bool:
        if ticket is None:
            return True
        wait = _DurableWait()

        def durable() -> None:
            wait.done = True
            wait.event.set()

        with self._lock:
            if self._stopping.is_set():
                return False
            self._waits.add(wait)
        try:
            self.sink.on_durable(ticket, durable)
            wait.event.wait(self.durable_timeout_s)
        finally:
            with self._lock:
                self._waits.discard(wait)
        return wait.done

    def _ack(self, header: MessageHeader | None, code: str, errors: list[AckError]) -> str:
        """The ACK: MSA-3 names the reasons (each once) and the first one's detail."""
        text = ""
        if code != "AA" and errors:
            reasons = list(dict.fromkeys(e.reason for e in errors))
            text = f"{', '.join(reasons)}: {errors[0].text}"
        unique = list(dict.fromkeys(errors))
        return build_ack(header.control_id if header else "", code, text, errors=unique,
                         header=header, now=self.sink.clock.now())


def _short_id(raw: str | None, comp: str) -> str:
    """The device id to record: the EUI-64 of an HD/EI id typed ``EUI-64``
    (``VSP^080019FFFE0B4020^EUI-64`` -> ``080019FFFE0B4020``), else its first non-empty
    component (``NK_GATEWAY^NKGW01^L`` -> ``NK_GATEWAY``)."""
    parts = (raw or "").split(comp)
    if len(parts) >= 2 and parts[-1].strip().upper() == "EUI-64" and parts[-2].strip():
        return parts[-2].strip()[:MAX_DEVICE_ID]
    for part in parts:
        if part.strip():
            return part.strip()[:MAX_DEVICE_ID]
    return ""
