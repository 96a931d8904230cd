"""Run a command in the terminal's foreground on its own, so that Ctrl-C stops it, not make.

``make run`` ends in honcho. Ctrl-C sends SIGINT to the terminal's foreground process group,
which holds make as well as honcho: honcho stops its processes and exits 130, and make, which
got the SIGINT too, reports "Error 130" and kills itself with the signal, whatever its recipe
did. So this wrapper moves itself and the command into a process group of their own and hands
that group the terminal (as a shell does for a job). Ctrl-C then reaches only the command;
once it has stopped everything, the wrapper gives the terminal back and exits 0 if the
command's failure was that Ctrl-C (130), so ``make run`` ends with status 0.

Without a terminal (a script, CI, a supervisor) nothing moves: a SIGINT sent to make's process
group still reaches make, which then ends with its own status 130, as any make does. SIGTERM is
passed on to the command.

Usage: ``python -m aisystem.foreground COMMAND [ARGS...]``
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import FrameType

INTERRUPTED = 128 + signal.SIGINT  # how honcho (and a shell) report a stop by Ctrl-C


@contextlib.contextmanager
def _terminal_signals_ignored() -> Iterator[None]:
    """A background group that sets the terminal's foreground group gets SIGTTOU."""
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTTOU, previous)


def terminal_take() -> Callable[[], None] | None:
    """Put this process in a new process group that holds the terminal's foreground, and
    return what gives the terminal back; None (and nothing changed) without a controlling
    terminal, or when this process is not in its foreground (``make run &``)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        original = os.tcgetpgrp(tty)
    except OSError:
        original = -1
    if original != os.getpgrp():
        os.close(tty)
        return None
    try:
        os.setpgid(0, 0)
        with _terminal_signals_ignored():
            os.tcsetpgrp(tty, os.getpgrp())
    except OSError:
        with contextlib.suppress(OSError):
            os.setpgid(0, original)  # back where Ctrl-C reaches us
        os.close(tty)
        return None

    def give_back() -> None:
        with _terminal_signals_ignored(), contextlib.suppress(OSError):
            os.tcsetpgrp(tty, original)  # fails only if make is gone: nothing to give back
        os.close(tty)

    return give_back


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    give_back = terminal_take()
    interrupted = False

    def note_interrupt(signum: int, frame: FrameType | None) -> None:
        # The command got the same Ctrl-C (it is in this group) and stops on its own.
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, note_interrupt)
    # Ctrl-Z would stop this group while make, in the shell's job, keeps waiting: ignore it.
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    child = subprocess.Popen(argv)  # noqa: S603  (our own Makefile's command)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
    try:
        code = child.wait()
    finally:
        if give_back is not None:
            give_back()
    if code == INTERRUPTED or (interrupted and code == -signal.SIGINT):
        return 0
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
