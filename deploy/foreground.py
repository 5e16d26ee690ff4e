"""Run a command as the terminal's foreground job, so that Ctrl-C reaches that command alone.

    python3 deploy/foreground.py COMMAND [ARG...]

`make demo` runs the demo under make. At a terminal, Ctrl-C sends SIGINT to every process
of the foreground process group, make included, and an interrupted make kills itself with
SIGINT (exit 130, "make: *** [demo] Interrupt") whatever the demo did. This puts the
command in a process group of its own and hands it the terminal, as a shell does for a
job; Ctrl-C then goes to the command only, which shuts down in order and exits 0; this
process takes the terminal back and exits with the command's status, and make with it.

Ctrl-Z stops the command and then make's own job (`fg` resumes both); SIGTERM, SIGHUP
and SIGQUIT sent to this process are passed on to the command. Without a controlling
terminal (CI, cron, a pipe) or outside the terminal's foreground, the command simply
replaces this process. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

PASSED_ON = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT)


def give_terminal(tty: int, pgrp: int) -> None:
    """Make ``pgrp`` the terminal's foreground group (SIGTTOU ignored: a background
    process may not do this otherwise)."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(tty, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, previous)


def controlling_terminal() -> int | None:
    """The controlling terminal, when this process is in its foreground group."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.tcgetpgrp(tty) == os.getpgrp():
            return tty
    except OSError:
        pass
    os.close(tty)
    return None


def start_as_job(argv: list[str], tty: int) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            give_terminal(tty, os.getpid())
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"foreground: {argv[0]}: {exc.strerror}", file=sys.stderr)
        os._exit(127)
    try:  # both parent and child set the group and the terminal: no race on who is first
        os.setpgid(pid, pid)
        give_terminal(tty, pid)
    except OSError:  # the child has already exec'd (so it did both)
        pass
    return pid


def run(argv: list[str]) -> int:
    tty = controlling_terminal()
    if tty is None:
        os.execvp(argv[0], argv)
    own_group = os.getpgrp()
    pid = start_as_job(argv, tty)

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)

    for sig in PASSED_ON:
        signal.signal(sig, pass_on)
    try:
        while True:
            _, status = os.waitpid(pid, os.WUNTRACED)
            if not os.WIFSTOPPED(status):
                return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else \
                    128 + os.WTERMSIG(status)
            # Ctrl-Z: the job stopped; stop make's job too, so the shell takes over
            give_terminal(tty, own_group)
            os.killpg(own_group, signal.SIGTSTP)
            # resumed (`fg`): the command gets the terminal back and goes on
            give_terminal(tty, pid)
            os.killpg(pid, signal.SIGCONT)
    finally:
        give_terminal(tty, own_group)
        os.close(tty)


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
