"""Prometheus metrics: ``GET /metrics`` shows every process of the host in one scrape.

prometheus-client runs in its multiprocess mode: each process (the web processes, django-q2's
workers, the bridge) writes its metrics to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``
and a scrape of any web process reads them all. The parts:

- ``multiproc``: the directory, set up by ``settings.py`` before the library is imported
  (the library picks its mode on import). No prometheus-client import at module level.
- ``instruments``: the metrics and the small functions that record them. The pipeline, the
  Claude store, webhook delivery and the consumers call these; they read no database.
- ``collectors``: what is computed when scraped (the job queue's depth, the bridge's
  heartbeat), and the registry a scrape reads.
- ``access`` and ``views``: who may read ``/metrics`` (an API token or a staff session) and
  the view itself.

This package's ``__init__`` imports nothing, so that ``settings.py`` can import ``multiproc``
without importing prometheus-client too early.
"""
