"""The tools Claude may call, built per message for its sender.

* ``registry``: ``Tool``, ``ToolRegistry`` (name → spec + coroutine, results trimmed,
  failures as ``is_error`` results), ``ToolInputError``, ``ToolFailed``;
* ``builtin``: the tools every conversation has (``get_current_time``);
* ``github``, ``google_calendar``: one module per provider, declaring its reads and writes
  (``actions.ProviderTools``), registered in ``catalog.PROVIDER_TOOLS``;
* ``offer``: ``tools_for(context)``, the sender's registry: built-ins plus the tools of each
  configured provider they have connected, bound to their account;
* ``pending``: writes wait for the person: ``pending_action_propose`` stores one,
  ``pending_action_confirm``/``pending_action_cancel`` (the /confirm and /cancel commands)
  and ``pending_action_decide`` (Confirm/Cancel buttons) settle it, exactly once.

Adding a provider's tools: a module here declaring a ``ProviderTools`` (reads, writes with
``prepare`` and ``execute``), one entry in ``catalog.PROVIDER_TOOLS`` under the provider's
name in ``aisystem.integrations.registry``.
"""

from __future__ import annotations

from pipeline.tools.builtin import CURRENT_TIME, default_registry
from pipeline.tools.offer import tools_for, tools_for_message
from pipeline.tools.pending import (
    Decision,
    pending_action_cancel,
    pending_action_confirm,
    pending_action_decide,
)
from pipeline.tools.registry import (
    Tool,
    ToolFailed,
    ToolFunction,
    ToolInputError,
    ToolOutput,
    ToolRegistry,
    ToolsFor,
    fixed_tools,
)

__all__ = [
    "CURRENT_TIME",
    "Decision",
    "Tool",
    "ToolFailed",
    "ToolFunction",
    "ToolInputError",
    "ToolOutput",
    "ToolRegistry",
    "ToolsFor",
    "default_registry",
    "fixed_tools",
    "pending_action_cancel",
    "pending_action_confirm",
    "pending_action_decide",
    "tools_for",
    "tools_for_message",
]
