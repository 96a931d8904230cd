"""aisystem: a self-hosted AI assistant gateway. This package is the Django project, in three
layers:

- **The shell** wires the project together: ``settings``, ``envconfig``, ``logconfig``,
  ``urls``, ``asgi``, ``wsgi``, ``apps``, ``checks``, and the background wiring (``tasks``,
  ``schedules``, ``job_events``: django-q2 jobs and signals, each handing over to a service or
  to the pipeline). ``signalproxy`` is the process helper ``make run`` starts workers with.
- **The core** is the data and the rules: ``models``, ``services`` (every write),
  ``selectors`` (reads), ``fields``, ``crypto``, ``errors``, ``events`` (the event stream)
  and ``event_catalog`` (its types and payloads), ``webhooks`` (signed outgoing deliveries),
  ``social`` (social-auth's storage and strategy) and ``integrations`` (people's OAuth
  accounts, their tokens and the providers' API clients; its ``views`` and ``urls`` are a
  surface). The pipeline and the bridge build on it, so it imports neither.
- **The surfaces** are where people and programs come in: ``admin`` (with ``admin_site``),
  ``api``, ``chat``, ``live``, ``accounts`` and the ``management`` commands. A surface may use
  the pipeline; it writes through services and reads through selectors.

``pipeline`` (the five steps) and ``telegram_bridge`` (a transport) sit beside this package:
they import the core only, and nothing imports the bridge. The rules are import-linter
contracts in ``pyproject.toml``, checked by ``make lint`` and ``tests/test_layers.py``.
"""
