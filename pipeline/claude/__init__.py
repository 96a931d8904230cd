"""Step 4's way out to Anthropic: everything that knows Claude is an HTTP service.

* ``client``: ``ClaudeClient``, the only module that imports ``anthropic`` (ruff's TID251
  bans the import everywhere else): streaming, retries, key rotation, the breaker's verdicts.
* ``store``: its database side: picking and marking keys, the ``ExternalCall`` log, the
  breaker's settlement, and ``claude_status`` for health pages.
* ``breaker``: the circuit breaker whose state is a database row shared by every process.
* ``pricing``: what a call costs, from its token counts.
* ``params``: a ``ClaudeRequest`` as the Messages API's request parameters.

This file imports nothing, so ``from pipeline.claude.pricing import …`` (or the fake Messages
API in ``pipeline.fakeclaude``) never loads the SDK.
"""
