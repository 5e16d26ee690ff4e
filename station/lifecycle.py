"""Orderly stop for the long-running commands (``chairside run`` and ``demo``).

:class:`StopSignals` turns SIGINT, SIGTERM and SIGHUP into a stop request from the moment it is
installed (the first thing the command line does, before any slow import or start-up
step): the handler only records the signal and wakes whoever waits, so a signal can never
break a start-up step in the middle or leave a traceback. Start-up asks
:meth:`StopSignals.check` between its steps; it raises :class:`StopRequested`, and the
caller stops what it had already started, in reverse order, and exits 0.

Only the standard library is imported here, so that installing the handlers costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from types import FrameType

from station.errors import StationError

__all__ = ["STOP_SIGNALS", "StopRequested", "StopSignals", "signal_name"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, a stop, a closed terminal


class StopRequested(StationError):
    """A stop was requested (by ``signal``) while starting: unwind what has started."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"{signal_name(signum)} received")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP request a stop instead of ending the process at once.
    SIGINT and SIGHUP that the process was started with ignored (``nohup``, ``cmd &`` in a
    script) stay ignored, as the convention wants; SIGTERM is always taken.

    The handler takes no lock (it runs between two bytecodes of the main thread, possibly
    inside a lock the main thread holds): it records the first signal and writes a byte
    to a pipe that :meth:`wait` selects on. ``enabled=False`` (or use off the main thread,
    where Python cannot install handlers) leaves the signals alone. Use as a context
    manager: leaving it puts the previous handlers back.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._pipe: tuple[int, int] | None = None

    def install(self) -> StopSignals:
        if not self.enabled or threading.current_thread() is not threading.main_thread():
            return self
        r, w = os.pipe()
        os.set_blocking(w, False)
        self._pipe = (r, w)
        for sig in STOP_SIGNALS:
            if sig != signal.SIGTERM and signal.getsignal(sig) is signal.SIG_IGN:
                continue
            self._previous[sig] = signal.signal(sig, self._handle)
        # a launcher may hand us these signals blocked; one already pending arrives now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        return self

    def restore(self) -> None:
        """Put the previous handlers back (a stop already requested stays requested)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if self._pipe is not None:
            with contextlib.suppress(OSError):  # full (already woken) or closed
                os.write(self._pipe[1], b"\0")

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def reason(self) -> str:
        """The signal's name, e.g. ``SIGTERM`` ("" while no stop was requested)."""
        return "" if self.signum is None else signal_name(self.signum)

    def check(self) -> None:
        """Raise :class:`StopRequested` if a stop was requested: call between start-up steps."""
        if self.signum is not None:
            raise StopRequested(self.signum)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested or ``timeout`` seconds have passed; True if requested."""
        if self.signum is None and self._pipe is not None:
            select.select([self._pipe[0]], [], [], timeout)
        elif self.signum is None:  # no handlers (not the main thread): nothing will come
            threading.Event().wait(timeout)
        return self.signum is not None

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()
