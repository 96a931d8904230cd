"""``GET /metrics``: the Prometheus text of every process on this host.

prometheus-client's own Django view does the exposition (the text or OpenMetrics format by
``Accept``, gzip by ``Accept-Encoding``, ``?name[]=`` to pick metrics); this subclass puts
``access.access_metrics`` in front of it and reads a fresh ``collectors.scrape_registry``.
Refusals are JSON ``{"detail": …}`` like the REST API's.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client.django import PrometheusDjangoView

from aisystem.metrics.access import MetricsAccess, access_metrics
from aisystem.metrics.collectors import scrape_registry

logger = logging.getLogger(__name__)

UNAUTHORIZED = "Send an API token (Authorization: Bearer …), or sign in as staff."
FORBIDDEN = "Only staff may read the metrics."


class MetricsView(PrometheusDjangoView):
    http_method_names = ["get"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        access = access_metrics(
            authorization=request.headers.get("Authorization"),
            user=getattr(request, "user", None),
        )
        if not access.allowed:
            return _refusal(access)
        self.registry = scrape_registry()
        # prometheus-client's view is unannotated.
        response: HttpResponse = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        response["Cache-Control"] = "no-store"
        return response


def _refusal(access: MetricsAccess) -> HttpResponse:
    logger.info("metrics refused", extra={"reason": access.reason})
    if access.status == 401:
        response = JsonResponse({"detail": UNAUTHORIZED}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    else:
        response = JsonResponse({"detail": FORBIDDEN}, status=access.status)
    response["Cache-Control"] = "no-store"
    return response


metrics_view = MetricsView.as_view()
