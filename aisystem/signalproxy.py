"""Run a command in its own process group; forward SIGTERM/SIGINT to its main process only.

honcho stops each process with ``killpg(SIGTERM)``, which also reaches the children of
django-q2's ``qcluster``; its sentinel then waits on workers that are already dying and
needs a SIGKILL. Behind this proxy only the sentinel is signalled, and it stops its
workers itself (about 2 s). A second signal is forwarded as SIGKILL.

Usage: ``python -m aisystem.signalproxy COMMAND [ARGS...]``
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import FrameType


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    child = subprocess.Popen(argv, process_group=0)  # noqa: S603  (our own Procfile command)
    signalled = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal signalled
        child.send_signal(signal.SIGKILL if signalled else signal.SIGTERM)
        signalled = True

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
