"""MLLP (HL7 Minimal Lower Layer Protocol) framing: ``0x0B <message> 0x1C 0x0D``.

- :func:`frame` wraps one message for the wire.
- :class:`MllpDecoder` cuts a TCP byte stream into messages, chunk by chunk (a frame may
  arrive in any number of pieces, several frames in one piece). It never raises on bad
  input: bytes before a start block are skipped and reported (``garbage``); a frame longer
  than ``max_message_bytes`` is dropped up to its end block and reported (``too_long``,
  with its first bytes so that the MSH can still be answered); a start block inside a frame
  (a sender that gave up on a frame and began again) reports the partial frame
  (``truncated``) and starts over, as does :meth:`MllpDecoder.close` for a frame cut off by
  the end of the stream. HL7 text never holds 0x0B or 0x1C, so a 0x1C ends the frame even
  when the 0x0D after it is missing (the 0x0D is skipped when it comes).

Pure: bytes in, messages out. The sockets are elsewhere (``simulators.mllp_client.MllpClient``, the
listener in ``devices.hl7_listener``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["END_BLOCK", "START_BLOCK", "MllpDecoder", "MllpProblem", "frame"]

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_CR = 0x0D
_VT = 0x0B
HEAD_BYTES = 4096  # kept of an oversized frame: enough for its MSH


def frame(message: str, encoding: str = "utf-8") -> bytes:
    """One message as an MLLP frame."""
    return START_BLOCK + message.encode(encoding) + END_BLOCK


@dataclass(frozen=True, slots=True)
class MllpProblem:
    """Something in the stream that is not a message: ``reason`` is ``garbage``,
    ``too_long`` or ``truncated``; ``size`` the bytes concerned; ``head`` the first bytes of
    the frame (``too_long``, ``truncated``) or of the garbage."""

    reason: str
    size: int
    head: bytes = b""


class MllpDecoder:
    """Incremental MLLP decoder: :meth:`feed` chunks, get messages (``bytes``, without the
    framing) and :class:`MllpProblem` reports, in stream order."""

    def __init__(self, max_message_bytes: int = 1 << 20) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be positive")
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._discarding = False  # inside an oversized frame
        self._size = 0  # bytes of the current frame so far (also while discarding)
        self._head = b""
        self._garbage = 0
        self._garbage_head = b""
        self._skip_cr = False  # just ended a frame at 0x1C: its 0x0D may still come
        # totals, for health pages and tests
        self.frames_started = 0
        self.messages = 0
        self.garbage_bytes = 0
        self.oversized = 0
        self.truncated = 0

    @property
    def in_frame(self) -> bool:
        return self._in_frame

    @property
    def frame_bytes(self) -> int:
        """Bytes of the frame begun so far (0 outside a frame)."""
        return self._size if self._in_frame else 0

    def feed(self, data: bytes) -> Iterator[bytes | MllpProblem]:
        """Decode ``data``; yields each complete message and each problem found in it."""
        i, n = 0, len(data)
        while i < n:
            if self._skip_cr:
                self._skip_cr = False
                if data[i] == _CR:
                    i += 1
                    continue
            if not self._in_frame:
                j = data.find(START_BLOCK, i)
                end = n if j < 0 else j
                if end > i:
                    room = 64 - len(self._garbage_head)
                    if room > 0:
                        self._garbage_head += bytes(data[i:min(end, i + room)])
                    self._garbage += end - i
                    self.garbage_bytes += end - i
                if j < 0:
                    return
                if self._garbage:
                    yield self._end_garbage()
                self._start_frame()
                i = j + 1
                continue
            # inside a frame: up to the next end or start block
            ends = [x for x in (data.find(b"\x1c", i), data.find(START_BLOCK, i)) if x >= 0]
            k = min(ends) if ends else n
            self._take(data[i:k])
            if k == n:
                return
            if data[k] == _VT:  # a new frame begins before this one ended
                yield self._end_truncated()
                self._start_frame()
                i = k + 1
                continue
            # 0x1C: end of the frame
            i = k + 1
            self._skip_cr = True
            self._in_frame = False
            if self._discarding:
                self.oversized += 1
                yield MllpProblem("too_long", self._size, self._head)
            else:
                self.messages += 1
                yield bytes(self._buf)
            self._buf.clear()

    def close(self) -> list[MllpProblem]:
        """The end of the stream: reports a frame cut off, or trailing garbage."""
        out = []
        if self._in_frame:
            out.append(self._end_truncated())
            self._in_frame = False
        elif self._garbage:
            out.append(self._end_garbage())
        return out

    # --- internals -----------------------------------------------------------------------

    def _start_frame(self) -> None:
        self.frames_started += 1
        self._in_frame = True
        self._discarding = False
        self._size = 0
        self._head = b""
        self._buf.clear()

    def _take(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._size += len(chunk)
        if self._discarding:
            return
        if self._size > self.max_message_bytes:
            self._discarding = True
            self._head = bytes((self._buf + chunk)[:HEAD_BYTES])
            self._buf.clear()
            return
        self._buf += chunk

    def _end_truncated(self) -> MllpProblem:
        self.truncated += 1
        head = self._head if self._discarding else bytes(self._buf[:HEAD_BYTES])
        problem = MllpProblem("truncated", self._size, head)
        self._buf.clear()
        self._discarding = False
        return problem

    def _end_garbage(self) -> MllpProblem:
        problem = MllpProblem("garbage", self._garbage, self._garbage_head)
        self._garbage = 0
        self._garbage_head = b""
        return problem
