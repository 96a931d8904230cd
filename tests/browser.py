"""What the end-to-end browser tests share: free ports, processes started in the background
(daphne, fakeclaude) with their output in a log, and a headless Debian Chromium.

Chromium runs with the flags that keep it off the network on its own (this machine's network
is closed, and background requests would be refused many at a time).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, subprocess_database_url

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}:\n{log.read_text()}")


@contextlib.contextmanager
def background(args: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[None]:
    """Run ``args`` until the block ends, once something listens on ``port``."""
    with log.open("wb") as output:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, process, log)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def process_env(claude_port: int) -> dict[str, str]:
    """The environment of a web process sharing this test's database and the fake Claude."""
    return {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{claude_port}",
        "ANTHROPIC_API_KEY": "sk-ant-browser-test",
        "PYTHONUNBUFFERED": "1",
    }


def fakeclaude_args(port: int, *extra: str) -> list[str]:
    return [sys.executable, "manage.py", "fakeclaude", "--port", str(port), *extra]


def daphne_args(port: int) -> list[str]:
    application = "aisystem.asgi:application"
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), application]


def chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# Runs in every document of the page before its own scripts: each Content-Security-Policy
# violation (a blocked script, style, connection, form…) is reported to the test.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__aisystemPolicyViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} on ${location.pathname}`
    + ` (${event.sourceFile || "?"}:${event.lineNumber})`);
});
"""
_POLICY_WORDS = ("Content Security Policy", "Content-Security-Policy", "Permissions-Policy")


def watch_policy_violations(page: Any, into: list[str] | None = None) -> list[str]:
    """Collect ``page``'s Content-Security-Policy violations (its ``securitypolicyviolation``
    events, on every page it opens from now on) and Chromium's console complaints about the
    CSP or Permissions-Policy headers, into the list returned (or ``into``). Call it before the
    page's first ``goto``; a test asserts the list is empty at the end."""
    found = [] if into is None else into

    def report(text: str) -> None:
        found.append(text)

    page.expose_function("__aisystemPolicyViolation", report)
    page.add_init_script(_REPORT_VIOLATIONS)

    def console(message: Any) -> None:
        if message.type in ("error", "warning") and any(w in message.text for w in _POLICY_WORDS):
            found.append(f"console: {message.text}")

    page.on("console", console)
    return found


def log_tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"
