"""The processes `make run` starts: they serve, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, subprocess_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
BRIDGE_IDLES = "waiting for python manage.py telegram_login"


def wait_for_http(url: str, process: subprocess.Popen[str], deadline: float) -> int:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                return int(response.status)
        except OSError:
            time.sleep(0.3)
    return 0


def wait_for_log(
    log: Path, needles: list[str], process: subprocess.Popen[str], deadline: float
) -> bool:
    while time.monotonic() < deadline and process.poll() is None:
        text = log.read_text()
        if all(needle in text for needle in needles):
            return True
        time.sleep(0.3)
    return False


def test_web_worker_and_bridge_start_serve_the_admin_and_stop_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    honcho = Path(sys.executable).parent / "honcho"
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "honcho.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(honcho), "-f", "Procfile", "start", "--no-colour", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            status = wait_for_http(
                f"http://127.0.0.1:{port}/admin/login/", process, time.monotonic() + 60
            )
            assert status == 200, log.read_text()
            # Ctrl-C once every process is up, as a person would: the worker's cluster is
            # running and the bridge idles (both can take a while on a busy machine).
            ready = wait_for_log(log, [BRIDGE_IDLES, "running."], process, time.monotonic() + 60)
            assert ready, log.read_text()
            process.send_signal(signal.SIGINT)  # what Ctrl-C delivers to honcho
            # A hang guard, not a timing assertion: the contract is 10 s.
            process.wait(timeout=30)
        finally:
            if process.poll() is None:  # a failed assertion above: stop everything anyway
                process.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=15)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert "SIGKILL" not in text, text
    assert "Q Cluster" in text and "has stopped" in text, text
    assert BRIDGE_IDLES in text, text
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--port {port}"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""
