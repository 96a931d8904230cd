"""What one scrape reads: every process's metric files (or, with multiprocess mode off, this
process's own), plus the figures computed at scrape time from the database.

* ``aisystem_queue_depth``: background jobs waiting for a worker, as django-q2's broker
  counts them (``queue_size``: queued and not taken, or taken by a worker whose lease ran
  out).
* ``aisystem_bridge_up{session}``: 1 while an enabled Telegram session's bridge is connected
  and its heartbeat is fresh, as ``GET /api/v1/health`` judges it (``BRIDGE_STALE_AFTER``),
  else 0. No enabled session, no sample.

A database that does not answer leaves those two out of the scrape (and is logged) rather
than failing it: the process metrics are still worth having then.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from aisystem.api.health import BRIDGE_STALE_AFTER
from aisystem.metrics.multiproc import live_gauges_prune
from aisystem.models import TelegramSession

logger = logging.getLogger(__name__)

QUEUE_DEPTH = "aisystem_queue_depth"
BRIDGE_UP = "aisystem_bridge_up"


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: the processes' metrics and the scrape-time figures."""
    registry = CollectorRegistry(support_collectors_without_names=True)
    directory: Path | None = settings.METRICS_MULTIPROC_DIR
    if directory is not None:
        registry.register(ProcessFilesCollector(directory))
    else:
        registry.register(ThisProcessCollector())
    registry.register(DatabaseCollector())
    return registry


class ProcessFilesCollector:
    """prometheus-client's ``MultiProcessCollector``, after removing dead processes' live
    gauges (see ``multiproc``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # prometheus-client leaves MultiProcessCollector unannotated.
        self.files = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        live_gauges_prune(self.directory)
        metrics: Iterable[Metric] = self.files.collect()  # type: ignore[no-untyped-call]
        return metrics


class ThisProcessCollector:
    """Multiprocess mode off: the default registry of this process (which also has
    prometheus-client's process and Python collectors)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class DatabaseCollector:
    """The figures read when scraped; ``describe`` names them without reading anything."""

    def describe(self) -> list[Metric]:
        return [_queue_family(), _bridge_family()]

    def collect(self) -> Iterator[Metric]:
        try:
            depth = _queue_depth()
        except Exception:
            logger.warning("metrics: could not read the job queue's depth", exc_info=True)
        else:
            family = _queue_family()
            family.add_metric([], depth)
            yield family
        try:
            bridges = _bridges_up()
        except Exception:
            logger.warning("metrics: could not read the bridge's heartbeat", exc_info=True)
        else:
            family = _bridge_family()
            for name, up in bridges:
                family.add_metric([name], 1.0 if up else 0.0)
            yield family


def _queue_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(QUEUE_DEPTH, "Background jobs waiting for a worker.")


def _bridge_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        BRIDGE_UP,
        "1 while the Telegram session's bridge is connected with a fresh heartbeat, else 0.",
        labels=["session"],
    )


def _queue_depth() -> int:
    from django_q.brokers import get_broker  # the broker's models: load late

    return int(get_broker().queue_size())


def _bridges_up() -> list[tuple[str, bool]]:
    now = timezone.now()
    sessions = TelegramSession.objects.filter(is_enabled=True).order_by("name")
    return [
        (
            session.name,
            session.state == TelegramSession.State.CONNECTED
            and session.heartbeat_at is not None
            and now - session.heartbeat_at < BRIDGE_STALE_AFTER,
        )
        for session in sessions.only("name", "state", "heartbeat_at")
    ]
