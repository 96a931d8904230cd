"""The HTTP client the providers' API clients share.

Each call has a timeout, is retried with exponential backoff on 429 and 5xx (honouring
``Retry-After``, within a cap, since a tool call must answer in seconds), and leaves one
``ExternalCall`` row: service, operation, status and latency, never the token or content.
tenacity does the retrying; what is retried, and for how long, is decided here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.utils import timezone
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from aisystem.errors import IntegrationError
from aisystem.models import ExternalCall

logger = logging.getLogger(__name__)

TIMEOUT = (5.0, 15.0)  # connect, read
ATTEMPTS = 3
MAX_RETRY_AFTER = 10.0  # seconds: a longer wait is not worth holding the answer for
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class Unauthorized(IntegrationError):
    """The provider refused the token (401): the account needs reconnecting."""


class ApiClient:
    """Calls one provider's REST API. One session (so one connection pool) per client; the
    person's token is set before each call (``use_token``), since a refresh may change it."""

    def __init__(self, *, service: str, base_url: str, headers: Mapping[str, str] = {}) -> None:
        self.service = service
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._session = requests.Session()
        self._session.headers.update(headers)
        self._session.headers["User-Agent"] = "aisystem"

    def use_token(self, token: str) -> None:
        self._session.headers["Authorization"] = f"Bearer {token}"

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """The decoded JSON answer (None for 204). Raises ``Unauthorized`` on 401 and
        ``IntegrationError`` (with the provider's own message) on any other failure."""
        url = self.base_url + path.lstrip("/")
        retrying = Retrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=_wait,
            retry=(
                retry_if_result(lambda r: r.status_code in RETRYABLE)
                | retry_if_exception_type(requests.ConnectionError)
            ),
            # Out of attempts: the last answer (or its exception) is the outcome.
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        try:
            response: requests.Response = retrying(
                self._send, method, url, operation=operation, params=params, json=json
            )
        except requests.RequestException as error:
            raise IntegrationError(
                self.service, operation, f"could not reach it ({type(error).__name__})"
            ) from None
        status = response.status_code
        if status < 400:
            return None if status == 204 or not response.content else _json(response)
        detail = _provider_message(response)
        if status == 401:
            raise Unauthorized(self.service, operation, "the provider refused the token")
        raise IntegrationError(
            self.service, operation, f"HTTP {status}: {detail}", permanent=status not in RETRYABLE
        )

    def _send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None,
        json: Any,
    ) -> requests.Response:
        started = time.monotonic()
        try:
            response = self._session.request(
                method, url, params=params, json=json, timeout=TIMEOUT, allow_redirects=False
            )
        except requests.RequestException as error:
            call_log(self.service, operation, None, started, type(error).__name__)
            raise
        detail = "" if response.status_code < 400 else _provider_message(response)
        call_log(self.service, operation, response.status_code, started, detail)
        return response


def app_call(
    service: str,
    operation: str,
    method: str,
    url: str,
    *,
    accept: tuple[int, ...],
    label: str,
    **kwargs: Any,
) -> requests.Response:
    """One call made as the app rather than with a person's token (revoking a grant): not
    retried (a revoke is asked again by asking again), logged, and an ``IntegrationError``
    unless the status is in ``accept``."""
    started = time.monotonic()
    try:
        response = requests.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    except requests.RequestException as error:
        call_log(service, operation, None, started, type(error).__name__)
        raise IntegrationError(service, operation, f"{label} could not be reached") from None
    call_log(service, operation, response.status_code, started)
    if response.status_code not in accept:
        raise IntegrationError(service, operation, f"{label} answered {response.status_code}")
    return response


def _wait(state: RetryCallState) -> float:
    """``Retry-After`` when the provider sent one (capped), else exponential with jitter."""
    outcome = state.outcome
    response = outcome.result() if outcome is not None and not outcome.failed else None
    header = response.headers.get("Retry-After") if response is not None else None
    if header:
        seconds = _retry_after_seconds(header)
        if seconds is not None:
            return min(seconds, MAX_RETRY_AFTER)
    return float(wait_exponential_jitter(multiplier=0.5, max=4.0)(state))


def _retry_after_seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise IntegrationError("http", "decode", "the answer was not JSON") from None


def _provider_message(response: requests.Response) -> str:
    """The provider's own words for an error (GitHub's ``message``, Google's
    ``error.message``), short; never the request."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or "error"
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        nested = error.get("message") if isinstance(error, dict) else error
        message = body.get("message") or body.get("error_description") or nested
    return str(message or response.reason or "error")[:200]


def call_log(
    service: str, operation: str, status: int | None, started: float, error: str = ""
) -> None:
    """One row of the external-call log; ``error`` is the provider's short message."""
    ExternalCall.objects.create(
        service=service,
        operation=operation,
        ok=status is not None and status < 400,
        status_code=status,
        latency_ms=int((time.monotonic() - started) * 1000),
        error=error[:500],
    )
