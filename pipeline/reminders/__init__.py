"""Reminders and scheduled prompts, the pipeline's half (the rules and the writes are the
core's, ``aisystem.services.reminders``):

* ``parsing``: reading ``/remind in|at|every …`` (pure);
* ``commands``: the replies of ``/remind``, ``/reminders`` and ``/timezone``;
* ``delivery``: the minutely job, ``reminders_deliver_due``, that sends one-off reminders and
  has the assistant answer recurring prompts.

Nothing is re-exported here, so that the command executor, which imports ``commands``, does
not load the agent that ``delivery`` needs.
"""
