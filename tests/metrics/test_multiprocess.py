"""Multiprocess mode for real: processes write into one ``PROMETHEUS_MULTIPROC_DIR`` and one
scrape shows them all; a new run starts from zero; a dead process's open sockets stop
counting; a directory that cannot be used stops start-up with a clear message; with the mode
switched off, a process's own metrics still work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from aisystem.metrics.multiproc import multiproc_dir_join
from aisystem.services.tokens import api_token_create
from tests.helpers import ROOT, manage
from tests.metrics.scrape import scrape, scrape_parse

SETUP = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisystem.settings")
django.setup()
from aisystem.metrics import instruments
"""
# Prints the metrics the files of the process's directory hold (no database needed).
PRINT_FILES = """
from pathlib import Path
from django.conf import settings
from prometheus_client import generate_latest
from aisystem.metrics.collectors import ProcessFilesCollector
print(generate_latest(ProcessFilesCollector(Path(settings.METRICS_MULTIPROC_DIR))).decode())
"""
WAIT_FOR_STDIN = "\nprint('ready', flush=True)\nsys.stdin.read()\n"
WEBHOOKS = "aisystem_webhook_deliveries_total"


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


@contextmanager
def running(code: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A process that runs ``code``, prints "ready", and then waits for its stdin to close."""
    process = subprocess.Popen(
        [sys.executable, "-c", SETUP + textwrap.dedent(code) + WAIT_FOR_STDIN],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", process.stderr.read() if process.stderr else line
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def isolated(tmp_path: Path) -> dict[str, str]:
    """An install of its own in tmp_path, with its own metrics directory."""
    return {
        "AISYSTEM_DATA_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "FIELD_ENCRYPTION_KEYS": "",
    }


@pytest.fixture
def multiprocess_dir() -> Path:
    directory = settings.METRICS_MULTIPROC_DIR
    if directory is None:
        pytest.skip("PROMETHEUS_MULTIPROC_DIR is set empty: multiprocess mode is off")
    return Path(directory)


# --- One scrape, every process ---------------------------------------------------------------


@pytest.mark.slow  # starts processes
@pytest.mark.django_db
def test_a_scrape_shows_what_another_process_counted_after_it_exited(
    multiprocess_dir: Path,
) -> None:
    token = api_token_create(name="prometheus")[1]
    before = scrape(token)

    child = python(
        """
        for _ in range(3):
            instruments.webhook_attempt_observe("dead")
        instruments.claude_request_observe(outcome="ok", input_tokens=7, output_tokens=11)
        instruments.message_observe(
            transport="telegram", status="answered", timings_ms={"gate": 2.0, "agent": 1500.0}
        )
        print(os.getpid())
        """
    )

    pid = int(child.stdout.split()[-1])
    assert pid != os.getpid()
    assert (multiprocess_dir / f"counter_{pid}.db").exists()
    after = scrape(token)
    assert after.delta(before, WEBHOOKS, outcome="dead") == 3
    assert after.delta(before, "aisystem_claude_tokens_total", kind="input") == 7
    assert after.delta(before, "aisystem_claude_tokens_total", kind="output") == 11
    assert (
        after.delta(before, "aisystem_messages_total", transport="telegram", status="answered") == 1
    )
    agent = {"step": "agent", "le": "2.5"}
    assert after.delta(before, "aisystem_pipeline_step_seconds_bucket", **agent) == 1
    assert after.delta(before, "aisystem_pipeline_step_seconds_sum", step="agent") == 1.5


@pytest.mark.slow  # starts processes
@pytest.mark.django_db
def test_open_sockets_count_only_while_their_process_lives(multiprocess_dir: Path) -> None:
    token = api_token_create(name="prometheus")[1]
    before = scrape(token)
    opened = """
        instruments.websocket_opened("chat")
        instruments.websocket_opened("chat")
        """

    with running(opened) as killed, running(opened) as ending:
        during = scrape(token)
        assert ending.stdin is not None
        ending.stdin.close()  # ends normally: its exit handler removes its gauge
        ending.wait(timeout=30)
        assert not (multiprocess_dir / f"gauge_livesum_{ending.pid}.db").exists()
        os.kill(killed.pid, signal.SIGKILL)  # no exit handler: the scrape notices
        killed.wait(timeout=30)
        assert (multiprocess_dir / f"gauge_livesum_{killed.pid}.db").exists()
        after = scrape(token)

    name = "aisystem_websocket_connections"
    assert during.delta(before, name, consumer="chat") == 4
    assert after.delta(before, name, consumer="chat") == 0
    assert not (multiprocess_dir / f"gauge_livesum_{killed.pid}.db").exists()


# --- Runs: a new one starts from zero --------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_a_new_run_does_not_count_what_the_last_run_left(tmp_path: Path) -> None:
    env = isolated(tmp_path)
    count_five = "for _ in range(5): instruments.webhook_attempt_observe('dead')\n"
    python(count_five, env)  # the last run: its files stay behind

    with running("instruments.webhook_attempt_observe('dead')\n", env):
        # A second process joins the run that the one above started: nothing is wiped.
        joined = python("instruments.webhook_attempt_observe('dead')\n" + PRINT_FILES, env)

    assert scrape_parse(joined.stdout).value(WEBHOOKS, outcome="dead") == 2


def test_the_first_process_of_a_run_wipes_only_metric_files(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "gauge_livesum_456.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("not ours")

    first = multiproc_dir_join(tmp_path)
    try:
        assert (first.first, first.wiped) == (True, 2)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "notes.txt"]
        (tmp_path / "counter_789.db").write_bytes(b"live")
        second = multiproc_dir_join(tmp_path)  # another holder is alive: it joins
        assert (second.first, second.wiped) == (False, 0)
        assert (tmp_path / "counter_789.db").exists()
        second.release()
    finally:
        first.release()

    third = multiproc_dir_join(tmp_path)  # nobody holds the run any more
    third.release()
    assert (third.first, third.wiped) == (True, 1)
    assert not (tmp_path / "counter_789.db").exists()


def test_a_process_that_reuses_a_dead_ones_pid_starts_its_gauges_from_zero(
    tmp_path: Path,
) -> None:
    other = multiproc_dir_join(tmp_path)  # a live holder: no wipe for the next one
    try:
        stale = tmp_path / f"gauge_livesum_{os.getpid()}.db"
        stale.write_bytes(b"stale")
        joined = multiproc_dir_join(tmp_path)
        joined.release()
        assert not stale.exists()
    finally:
        other.release()


# --- A directory that cannot be used ---------------------------------------------------------


def test_a_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(ImproperlyConfigured, match=r"PROMETHEUS_MULTIPROC_DIR=.*a-file/metrics"):
        multiproc_dir_join(blocker / "metrics")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_a_clear_error(tmp_path: Path) -> None:
    read_only = tmp_path / "metrics"
    read_only.mkdir(mode=0o500)

    with pytest.raises(ImproperlyConfigured, match="Make it writable"):
        multiproc_dir_join(read_only)


@pytest.mark.slow  # starts manage.py
def test_start_up_stops_naming_the_variable_when_the_directory_is_unusable(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {**isolated(tmp_path), "PROMETHEUS_MULTIPROC_DIR": str(blocker / "metrics")}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert f"PROMETHEUS_MULTIPROC_DIR={blocker / 'metrics'}: cannot use this" in result.stderr
    assert "set PROMETHEUS_MULTIPROC_DIR to an empty value" in result.stderr


# --- Multiprocess mode off ---------------------------------------------------------------------


@pytest.mark.slow  # starts a process
def test_with_the_mode_off_a_process_serves_its_own_metrics(tmp_path: Path) -> None:
    env = {**isolated(tmp_path), "PROMETHEUS_MULTIPROC_DIR": ""}

    result = python(
        """
        from django.conf import settings
        from prometheus_client import generate_latest
        from aisystem.metrics.collectors import scrape_registry
        assert settings.METRICS_MULTIPROC_DIR is None
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
        instruments.webhook_attempt_observe("delivered")
        instruments.webhook_attempt_observe("delivered")
        instruments.websocket_opened("live")
        print(generate_latest(scrape_registry()).decode())
        """,
        env,
    )

    metrics = scrape_parse(result.stdout)
    assert metrics.value(WEBHOOKS, outcome="delivered") == 2
    assert metrics.value("aisystem_websocket_connections", consumer="live") == 1
    assert metrics.has("process_cpu_seconds_total")  # this process's own collectors
    assert not (tmp_path / "prometheus").exists()
