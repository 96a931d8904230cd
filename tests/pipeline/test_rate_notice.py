"""A sender over their rate limit hears so once per exceeded window, wherever on the clock
their messages fall (CI once saw two notices when a burst straddled a window boundary of the
notice's own, aligned counter, four seconds before the hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aisystem.models import AccessAction, AccessRule, RateLimitPolicy, Role
from pipeline import admission
from pipeline.security_gate import SecurityGate
from tests.pipeline.builders import message

GATE = SecurityGate(stale_after_seconds=300, max_input_chars=1000)
HOUR = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)  # a rate window's end (3600 s windows)


@pytest.mark.django_db
@pytest.mark.parametrize("offsets", [(-10.0, -5.0, -3.9, -0.1), (-30.0, -20.0, -2.5, -1.5)])
def test_one_notice_per_exceeded_window_even_across_small_clock_boundaries(
    offsets: tuple[float, ...],
) -> None:
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    RateLimitPolicy.objects.create(
        name="guests", role=Role.GUEST, messages_per_window=2, window_seconds=3600
    )
    notices = []
    for number, offset in enumerate(offsets):
        now = HOUR + timedelta(seconds=offset)
        inbound = message(message_id=str(number), sent_at=now, text=f"m{number}")
        result = admission.admit(inbound, gate=GATE, now=now)
        notices.append(result.notice)

    assert [bool(n) for n in notices] == [False, False, True, False]
    assert "faster than I can answer" in notices[2]


@pytest.mark.django_db
def test_the_next_exceeded_window_gets_its_own_notice() -> None:
    AccessRule.objects.create(action=AccessAction.ALLOW, match_everyone=True)
    RateLimitPolicy.objects.create(
        name="guests", role=Role.GUEST, messages_per_window=1, window_seconds=60
    )
    told = []
    for number, offset in enumerate((1, 2, 61, 62)):
        now = HOUR + timedelta(seconds=offset)
        inbound = message(message_id=str(number), sent_at=now)
        told.append(bool(admission.admit(inbound, gate=GATE, now=now).notice))

    assert told == [False, True, False, True]
