"""The security gate's rate limits hold when two processes take messages at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aisystem.models import (
    AccessAction,
    AccessRule,
    Chat,
    ChatType,
    Identity,
    Message,
    RateLimitPolicy,
)
from tests.helpers import ROOT, subprocess_database_url

SCRIPT = """
import sys
from django.utils import timezone
from pipeline import admission
from pipeline.security_gate import SecurityGate
from pipeline.types import InboundMessage

gate = SecurityGate(stale_after_seconds=300, max_input_chars=1000)
allowed = 0
for n in range(20):
    message = InboundMessage(
        transport="telegram", chat_id="-500", chat_type="group", sender_id="77",
        message_id=f"{sys.argv[-1]}-{n}", sent_at=timezone.now(), text="hi",
    )
    allowed += admission.admit(message, gate=gate, now=timezone.now()).decision.allowed
print(allowed)
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_share_one_identity_rate_limit() -> None:
    identity = Identity.objects.create(transport="telegram", external_id="77")
    Chat.objects.create(transport="telegram", external_id="-500", chat_type=ChatType.GROUP)
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    RateLimitPolicy.objects.create(
        name="one person", identity=identity, messages_per_window=15, window_seconds=3600
    )
    env = {**os.environ, "DATABASE_URL": subprocess_database_url()}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _bootstrap(), name],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    outputs = [run.communicate(timeout=120) for run in runs]

    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
    allowed = sum(int(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert allowed == 15
    assert Message.objects.filter(status="rejected", status_reason="rate_limited").count() == 25


def _bootstrap() -> str:
    return (
        "import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'aisystem.settings');"
        "django.setup();\n" + SCRIPT
    )
