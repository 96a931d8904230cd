"""Leases on the messages a process is answering: who holds each one, and until when.

Every inbound message being processed carries ``lease_owner`` (this process: its role, host,
pid and a random part) and ``lease_until``. One heartbeat thread per process renews, in one
UPDATE every third of the lease's length, the leases of every message the process still
holds, so the cost does not grow with the number of messages in flight. A process that dies
(``kill -9``, a lost machine) stops renewing: a lease's length later
(``AISYSTEM_MESSAGE_LEASE_SECONDS``, 30 s) its messages are orphans, and the worker's sweep
(``pipeline.orphans``) has them answered once.

A thread rather than an asyncio task because the processes differ: daphne and the bridge run
an event loop, django-q2's workers run plain functions; a thread renews in all of them, and
a blocked event loop does not make a live process look dead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.db import connections
from django.utils import timezone

from aisystem.models import Message, MessageStatus

LeaseRole = Literal["web", "bridge", "worker"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_owners: dict[tuple[int, str], str] = {}  # (pid, role) -> owner; a forked child gets its own
_heartbeat_pid: int | None = None


def lease_owner(role: LeaseRole) -> str:
    """This process's owner name for ``role``, e.g. ``"web:host:4242:1f2e3d4c"``."""
    key = (os.getpid(), role)
    owner = _owners.get(key)
    if owner is None:
        with _lock:
            owner = _owners.setdefault(
                key, f"{role}:{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            )
    return owner


def lease_fields(role: LeaseRole, now: datetime) -> dict[str, object]:
    """The fields that give a message's lease to this process, and make sure a heartbeat
    renews it."""
    heartbeat_ensure()
    return {"lease_owner": lease_owner(role), "lease_until": now + lease_length()}


def lease_length() -> timedelta:
    """``settings.MESSAGE_LEASE_SECONDS`` (``AISYSTEM_MESSAGE_LEASE_SECONDS``, 30 by default)."""
    return timedelta(seconds=settings.MESSAGE_LEASE_SECONDS)


def leases_renew(*, now: datetime | None = None) -> int:
    """Renew the leases of the messages this process holds; returns how many."""
    owners = [owner for (pid, _), owner in list(_owners.items()) if pid == os.getpid()]
    if not owners:
        return 0
    until = (now or timezone.now()) + lease_length()
    return Message.objects.filter(lease_owner__in=owners, status=MessageStatus.PROCESSING).update(
        lease_until=until
    )


def heartbeat_ensure() -> None:
    """Start this process's heartbeat thread unless it runs (once per process: a fork's
    child starts its own, as threads do not survive a fork)."""
    global _heartbeat_pid
    if _heartbeat_pid == os.getpid():
        return
    with _lock:
        if _heartbeat_pid == os.getpid():
            return
        _heartbeat_pid = os.getpid()
        threading.Thread(target=_beat, name="lease-heartbeat", daemon=True).start()


def _beat() -> None:
    stop = threading.Event()
    while not stop.wait(lease_length().total_seconds() / 3):
        try:
            leases_renew()
        except Exception:  # the database is away for a moment: the next beat tries again
            logger.warning("could not renew message leases", exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections
