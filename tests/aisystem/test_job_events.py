"""A failed background job becomes a ``job.failed`` event, through a real django-q2 cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django_q.tasks import async_task

from aisystem.models import Event
from tests.helpers import ROOT, subprocess_database_url


@pytest.mark.django_db(transaction=True)
def test_a_job_that_raises_shows_as_a_failed_job_event(tmp_path: Path) -> None:
    async_task("math.sqrt", -1, task_name="negative-root", q_options={"max_attempts": 1})
    async_task("math.sqrt", 4, task_name="fine")
    env = {**os.environ, "DATABASE_URL": subprocess_database_url(), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "qcluster.log"
    with log.open("wb") as output:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not Event.objects.filter(kind="job.failed").exists():
                assert time.monotonic() < deadline, log.read_text()
                assert cluster.poll() is None, log.read_text()
                time.sleep(0.2)
        finally:
            cluster.terminate()
            cluster.wait(timeout=30)

    event = Event.objects.get(kind="job.failed")
    assert event.level == "error"
    assert event.summary == "Background job math.sqrt failed: math domain error"
    assert event.data == {"job": "negative-root", "func": "math.sqrt", "group": ""}
