from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from aisystem.models import Conversation


def conversations_end(*, conversations: QuerySet[Conversation], reason: str) -> int:
    """End the active ones among ``conversations``; the chat's next message starts afresh."""
    return conversations.filter(ended_at__isnull=True).update(
        ended_at=timezone.now(), ended_reason=reason[:64]
    )
