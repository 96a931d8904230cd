"""``make run`` in a real terminal: Ctrl-C stops every process and make ends with status 0.

The terminal is a pseudo-terminal whose line discipline turns the Ctrl-C byte into SIGINT for
its foreground process group, exactly as a terminal emulator's does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.slow  # sets up a fresh install and starts every process

CTRL_C = b"\x03"


def _controlling_terminal() -> None:
    """In the child, after setsid: make the pseudo-terminal on stdin its controlling one."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``make run`` on a pseudo-terminal, with everything it prints collected."""

    def __init__(self, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        self.master = master
        self.output = bytearray()
        self.process = subprocess.Popen(
            # -o: use the virtualenv as it is, as the test itself does (no reinstall).
            ["make", "--no-print-directory", "-o", ".venv/.installed-runtime", "run"],
            cwd=ROOT,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every process holding the terminal has gone
                return
            if not chunk:
                return
            self.output.extend(chunk)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait()
        self.reader.join(timeout=5)
        os.close(self.master)


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def test_ctrl_c_stops_make_run_with_status_0(tmp_path: Path) -> None:
    require_service("make", shutil.which("make") is not None, "make is not installed")
    port = free_port()
    skip = {"DATABASE_URL", "REDIS_URL", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    env = {name: value for name, value in os.environ.items() if name not in skip}
    env |= {"AISYSTEM_DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
    terminal = Terminal(env)
    try:
        deadline = time.monotonic() + 240
        while not listening(port) or "worker.1 started" not in terminal.text:
            assert terminal.process.poll() is None, terminal.text
            assert time.monotonic() < deadline, f"make run did not start:\n{terminal.text}"
            time.sleep(0.2)

        terminal.type(CTRL_C)
        status = terminal.process.wait(timeout=60)
        terminal.reader.join(timeout=5)
        text = terminal.text
    finally:
        terminal.close()

    assert status == 0, text
    assert "Error 130" not in text and "Interrupt" not in text, text
    for name in ("web", "worker", "bridge"):
        assert f"{name}.1 stopped (rc=" in text, text
    assert not listening(port)
