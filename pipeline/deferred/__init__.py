"""Deferred messages: answered once Claude is back, so nothing waits forever or piles up.

A message is deferred when Claude could not answer it for reasons on Claude's side: the
breaker open, no usable key, or a call that still failed after every retry (529 overloaded,
5xx, timeouts, connection errors, broken streams; see ``pipeline.agent._failure_outcome``).
Its sender was told so (``replies.DEFERRED_REPLY``; a partly streamed answer was replaced by
that notice). A scheduled job (``answer_deferred_messages``, every minute) then:

* gives up on messages older than ``DEFERRED_MAX_AGE`` (marked failed, reason "expired"),
  so the backlog is bounded;
* stops at once while the breaker refuses calls (open, or a live half-open probe);
* drains the backlog as fast as Claude allows: it claims the oldest claimable message, answers
  it from its stored text with the conversation's history, records the reply as a new
  message, and claims the next, until none is left, ``DRAIN_SECONDS`` have passed, or Claude
  is unavailable again (that message goes back to deferred and the run stops; the next run
  tries again). A message Claude now refuses as invalid fails, and its sender is told so
  (``replies.FAILED_REPLY``).

Throughput. The first answer of a run goes alone: if Claude is still down, one call finds out
(and, with the breaker due for a probe, that call is the probe). Once it succeeds, ``CONCURRENCY``
answers are in flight at a time, and when the backlog is larger than this run can take on,
it queues helper runs (``deferred_help``) for the cluster's other workers, so the backlog is
drained in parallel across workers. Any number of runs may work at once, in one process or
many: every claim is a conditional UPDATE, so two never answer the same message.

Order. A chat's deferred messages are answered one at a time, oldest first: a message is
claimable only while no older message of its chat is deferred or being answered by this job,
so each answer sees the previous one in its history and the replies arrive in order.

Crashes. A claim is a lease in the row (``lease_owner`` "deferred:…", ``lease_until``), renewed
while the answer is worked on. A worker killed mid-answer stops renewing; once the lease has
run out the message is claimable again (taken over by the next run), and the late writer, if
it ever comes back, finds the lease gone and records nothing. A run that loses its lease stops
that answer.

Delivery: a REST client finds the reply as a new ``out`` message of
``GET /api/v1/chats/{chat_id}/messages`` (and at ``/api/v1/messages/{id}``); a Telegram or
browser reply goes to the outbox, which that transport's sender drains (the reply is stored
with status "processing" until then). Attachments are not kept, so a deferred photo or PDF
is answered from its description only. Background answers (``pipeline.background``, status
reason "background") are deferred too while Claude is down, but their own task answers them.
"""

from __future__ import annotations

from pipeline.deferred.claims import DEFERRED_MAX_AGE, LEASE, OWNER_PREFIX, deferred_expire
from pipeline.deferred.drain import (
    CONCURRENCY,
    DRAIN_SECONDS,
    HELP_TASK,
    deferred_answer,
    deferred_help,
)

__all__ = [
    "CONCURRENCY",
    "DEFERRED_MAX_AGE",
    "DRAIN_SECONDS",
    "HELP_TASK",
    "LEASE",
    "OWNER_PREFIX",
    "deferred_answer",
    "deferred_expire",
    "deferred_help",
]
