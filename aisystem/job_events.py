"""Failed background jobs show in the live feed: django-q2's ``post_execute`` signal, sent by the
cluster's monitor process once a task's result is saved, becomes a ``job.failed`` system event.

The summary carries the job's function and the first line of its error, cut short: errors from
our services never contain secrets (``IntegrationError`` scrubs keys), and the full traceback
stays in the admin's "Failed tasks", where staff can read it.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django_q.signals import post_execute

ERROR_PREVIEW_CHARS = 160


@receiver(post_execute, dispatch_uid="aisystem.job_events.failed_job")
def failed_job_event(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    if task.get("success", True):
        return
    from aisystem.events import system_event_emit  # it imports the models: load late

    func = task.get("func")
    name = func if isinstance(func, str) else getattr(func, "__qualname__", repr(func))
    # django-q2 stores "<exception> : <traceback>"; the exception's own words come first.
    result = str(task.get("result") or "").split(" : Traceback", 1)[0].strip()
    error = result.splitlines()[0] if result else "no error message"
    if len(error) > ERROR_PREVIEW_CHARS:
        error = error[: ERROR_PREVIEW_CHARS - 1] + "…"
    system_event_emit(
        "job.failed",
        f"Background job {name} failed: {error}",
        level="error",
        job=str(task.get("name", "")),
        func=name,
        group=str(task.get("group") or ""),
    )
