"""What the HL7 listener (:mod:`devices.hl7_listener`) does with each message, the payload
of one MLLP frame: parse it, map its observations to chairs, hand them to the core, and answer
with an ACK, AA only once the store has committed them.

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

Messages sent again are recognised (HL7's original acknowledgment mode leaves it to the
receiver): each message whose readings were taken is remembered by its key
(:func:`wire.hl7.v2.message_key`: sender, MSH-10 and content), stored as a receipt in the
transaction of its readings; at start the listener takes the receipts of the last hour from
the store, whichever server wrote them. A message with a known key is answered AA (once its
first copy is on disk) and not stored again, counted in ``health()["duplicates"]``: the
message whose ACK a crash or a takeover lost, or one answered AR ``not_durable`` whose
readings were committed after all.

Every problem is counted with :meth:`reject` (its reason is the counter key; the framing
and connection ones by :mod:`devices.hl7_listener`): the parse
reasons, per-observation reasons, ``unknown_chair``, ``demo``, ``too_long`` (MLLP frame
over ``max_message_bytes``, answered AR when its MSH is readable), ``mllp_garbage`` (bytes
outside a frame), ``truncated`` (a frame cut off by a disconnect), ``too_many_connections``,
``frame_deadline``, ``not_durable``, ``internal``. Values not measured and codes Chairside
does not use are counted in ``health()["skipped"]``, not as problems. Nothing a client
sends closes the listener.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from devices.source import SourceBase
from monitor.config import Hl7Source
from monitor.readings import QualityFlag, Reading
from monitor.seam import Sink
from wire.hl7.ack import AckError, build_ack
from wire.hl7.pcd01 import Hl7ParseError, Observation, Pcd01Message, decode_message, parse_pcd01
from wire.hl7.v2 import MessageHeader, id_candidates, message_key

__all__ = ["Hl7MessageHandler"]

MAX_DEVICE_ID = 64
MAX_TAKEN = 200_000  # keys of taken messages remembered (an hour of a busy bay)
# HL7 table 0357 codes for the refusal reasons (ERR-3); anything else is 207
_HL7_CODES = {"wrong_unit": "103", "code_mismatch": "103", "bad_value": "102", "bad_time": "102",
              "unknown_chair": "204"}


@dataclass(slots=True, eq=False)
class _DurableWait:
    event: threading.Event = field(default_factory=threading.Event)
    done: bool = False


class Hl7MessageHandler(SourceBase):
    """The message side of :class:`devices.hl7_listener.Hl7Listener`: :meth:`handle_message`
    (called from a connection's thread, or directly), with its counters. The subclass serves
    the connections and sets :attr:`_stopping` when it stops."""

    def __init__(self, config: Hl7Source, sink: Sink, *, durable_timeout_s: float = 5.0) -> None:
        super().__init__(config.name, sink)
        self.config = config
        self.durable_timeout_s = durable_timeout_s
        self.skipped: Counter[str] = Counter()  # not_measured, unknown_code: not problems
        self.messages = 0
        self.duplicates = 0  # messages sent again, recognised, not stored again
        self._taken: OrderedDict[str, int | None] = OrderedDict()  # key -> store ticket
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._stopping = threading.Event()
        self._waits: set[_DurableWait] = set()

    def handle_message(self, payload: bytes | str, peer: str = "") -> str:
        """Take one message (the payload of one MLLP frame) and return its ACK's text."""
        with self._lock:
            self.messages += 1
        text = decode_message(payload)
        try:
            msg = parse_pcd01(text, self.config.max_observations)
        except Hl7ParseError as exc:
            self.reject(exc.reason, f"{peer}: {exc}")
            return self._ack(exc.header, "AR", [AckError(exc.reason, str(exc), exc.hl7_code)])
        try:
            return self._take(msg, message_key(msg.header, text), peer)
        except Exception as exc:  # the store closed under us, a bug: the sender may retry
            self.log.exception("message %s from %s failed", msg.control_id, peer)
            self.reject("internal", f"{peer}: message {msg.control_id}: {exc!r}")
            return self._ack(msg.header, "AR", [AckError("internal", f"internal error: {exc}")])

    def seed_receipts(self) -> None:
        """The memory of taken messages from the store (the last hour's receipts), so that
        a message taken before a restart or by the other server is recognised."""
        try:
            keys = self.sink.message_receipts(self.name)
        except Exception:
            self.log.exception("cannot read the messages taken lately from the store; a message "
                               "sent again after a restart would be stored again")
            return
        with self._deliver_lock:
            for key in keys:
                self._remember(key, None)
        self.log.info("%d message(s) taken lately remembered from the store", len(keys))

    def _remember(self, key: str, ticket: int | None) -> None:
        self._taken[key] = ticket
        self._taken.move_to_end(key)
        while len(self._taken) > MAX_TAKEN:
            self._taken.popitem(last=False)

    def _take(self, msg: Pcd01Message, key: str, peer: str) -> str:
        with self._deliver_lock:
            taken = key in self._taken
            ticket = self._taken.get(key)
        if taken:
            return self._again(msg, ticket, peer)
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
                if key in self._taken:  # the same message, on another connection, just now
                    return self._again(msg, self._taken[key], peer)
                result = self.deliver(readings, receipt=(self.name, key))
                if result.accepted:
                    self._remember(key, result.ticket)
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

    def _again(self, msg: Pcd01Message, ticket: int | None, peer: str) -> str:
        """A message taken before, sent again: AA once its first copy is on disk (AR
        ``not_durable`` as ever until then), nothing stored again."""
        with self._lock:
            self.duplicates += 1
        self.log.info("message %s from %s was taken before (sent again): not stored again",
                      msg.control_id, peer)
        if not self._wait_durable(ticket):
            text = "readings not confirmed on disk yet: send the message again"
            self.reject("not_durable", f"{peer}: message {msg.control_id}: {text}")
            return self._ack(msg.header, "AR", [AckError("not_durable", text)])
        return self._ack(msg.header, "AA", [])

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
