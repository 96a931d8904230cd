from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from aisystem.models import Conversation, Workspace


def conversations_end(*, conversations: QuerySet[Conversation], reason: str) -> int:
    """End the active ones among ``conversations``; the chat's next message starts afresh."""
    return conversations.filter(ended_at__isnull=True).update(
        ended_at=timezone.now(), ended_reason=reason[:64]
    )


@transaction.atomic
def workspace_make_default(*, workspace: Workspace) -> None:
    """Make ``workspace`` the one default, taking the flag off the previous default.

    Both updates commit together, so no reader ever sees zero defaults. The database allows
    at most one default (``workspace_one_default``): a concurrent call raises IntegrityError
    rather than leaving two.
    """
    Workspace.objects.filter(is_default=True).exclude(pk=workspace.pk).update(is_default=False)
    Workspace.objects.filter(pk=workspace.pk).update(is_default=True)
    workspace.is_default = True


DEFAULT_WORKSPACE_SLUG = "assistant"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, concise assistant. Answer in the language the user writes in."
)


def workspace_default_ensure() -> Workspace:
    """The default workspace, made if there is none. Several processes may race to make it:
    the database's one-default constraint picks one, and the others read it."""
    workspace = Workspace.objects.filter(is_default=True).first()
    if workspace is not None:
        return workspace
    try:
        with transaction.atomic():
            workspace, _ = Workspace.objects.update_or_create(
                slug=DEFAULT_WORKSPACE_SLUG,
                defaults={"is_default": True, "is_active": True},
                create_defaults={
                    "name": "Assistant",
                    "system_prompt": DEFAULT_SYSTEM_PROMPT,
                    "is_default": True,
                },
            )
    except IntegrityError:  # another process made one the default first
        workspace = Workspace.objects.get(is_default=True)
    return workspace
