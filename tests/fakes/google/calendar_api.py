"""The Calendar API: list and insert events in a person's primary calendar, with the
access token checked against the accounts server's userinfo and the granted scopes."""

from __future__ import annotations

import secrets
from abc import abstractmethod
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from http import HTTPStatus
from typing import TYPE_CHECKING

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.google.replies import _google_error, _json, _Reply, _unauthenticated
from tests.fakes.google.state import (
    _READ_SCOPES,
    _WRITE_SCOPES,
    CalendarEvent,
    CalendarRequest,
    _GoogleState,
)
from tests.fakes.loopback import LoopbackServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def _parse_when(value: dict[str, str] | None) -> datetime | None:
    """The instant an event's ``start``/``end`` names: a ``dateTime`` or an all-day ``date``."""
    try:
        if value and "dateTime" in value:
            moment = datetime.fromisoformat(value["dateTime"])
            return moment if moment.tzinfo else None
        if value and "date" in value:
            return datetime.combine(date.fromisoformat(value["date"]), time(), tzinfo=UTC)
    except (TypeError, ValueError):
        return None
    return None


def _rfc3339_arg(request: Request, name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    moment = _parse_when({"dateTime": raw})
    if moment is None:
        raise _Reply(_google_error(400, "Bad Request", "badRequest"))
    return moment


_CALENDAR_URLS = Map(
    [
        Rule("/calendar/v3/calendars/<calendar_id>/events", endpoint="list", methods=["GET"]),
        Rule("/calendar/v3/calendars/<calendar_id>/events", endpoint="insert", methods=["POST"]),
    ]
)


class _CalendarApi(_GoogleState):
    """The Calendar server's WSGI app. FakeGoogle provides ``_calendar`` (the server it runs
    on, for event links) and ``userinfo_url`` (where tokens are checked)."""

    _calendar: LoopbackServer

    @property
    @abstractmethod
    def userinfo_url(self) -> str: ...

    def _calendar_wsgi(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        request = Request(environ)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            self._raise_injected_failure(request)
            endpoint, args = _CALENDAR_URLS.bind_to_environ(environ).match()
            if args["calendar_id"] != "primary":
                raise _Reply(_google_error(404, "Not Found", "notFound"))
            sub, email = self._calendar_caller(
                token if scheme.lower() == "bearer" else "", write=endpoint == "insert"
            )
            with self._lock:
                if endpoint == "insert":
                    response = self._insert_event(request, sub, email)
                else:
                    response = self._list_events(request, sub)
        except _Reply as reply:
            response = reply.response
        except HTTPException as error:
            code = error.code or 404
            response = _google_error(code, HTTPStatus(code).phrase, "notFound")
        with self._lock:
            self._calendar_requests.append(
                CalendarRequest(
                    method=request.method,
                    path=request.path.removeprefix("/calendar/v3"),
                    token=token or None,
                    query=dict(request.args.items()),
                    status=response.status_code,
                )
            )
        return response(environ, start_response)

    def _raise_injected_failure(self, request: Request) -> None:
        with self._lock:
            failure = next(
                (
                    failure
                    for failure in self._failures
                    if failure.method == request.method
                    and request.path.startswith(failure.path_prefix)
                ),
                None,
            )
            if failure is None:
                return
            failure.times -= 1
            if failure.times <= 0:
                self._failures.remove(failure)
        if failure.status in {403, 429}:
            response = _google_error(
                failure.status, "Rate Limit Exceeded", "rateLimitExceeded", domain="usageLimits"
            )
        else:
            response = _google_error(
                failure.status, HTTPStatus(failure.status).phrase, "backendError"
            )
        if failure.retry_after is not None:
            response.headers["Retry-After"] = str(failure.retry_after)
        raise _Reply(response)

    def _calendar_caller(self, token: str, *, write: bool) -> tuple[str, str]:
        """Who holds ``token``, asked of the accounts server's userinfo, as (sub, email).

        Raises _Reply with 401 for a missing, unknown, expired or revoked token and 403 when
        its scopes do not cover the call."""
        if not token:
            raise _unauthenticated(invalid=False)
        answer = requests.get(
            self.userinfo_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        stored = self._storage.get_access_token(token)
        if answer.status_code != 200 or stored is None:
            raise _unauthenticated(invalid=True)
        granted = set(stored.scope.split())
        if not granted & (_WRITE_SCOPES if write else _READ_SCOPES):
            raise _Reply(
                _google_error(
                    403,
                    "Request had insufficient authentication scopes.",
                    "insufficientPermissions",
                )
            )
        claims = answer.json()
        return str(claims["sub"]), str(claims.get("email") or claims["sub"])

    def _list_events(self, request: Request, sub: str) -> Response:
        time_min, time_max = _rfc3339_arg(request, "timeMin"), _rfc3339_arg(request, "timeMax")
        single_events = request.args.get("singleEvents", "false").lower() == "true"
        order_by = request.args.get("orderBy")
        if order_by not in {None, "startTime", "updated"} or (
            order_by == "startTime" and not single_events
        ):
            message = "The requested ordering is not available for the particular query."
            raise _Reply(_google_error(400, message, "badRequest"))
        try:
            max_results = min(int(request.args.get("maxResults", 250)), 2500)
            offset = int(request.args.get("pageToken", 0))
        except ValueError:
            raise _Reply(_google_error(400, "Invalid value", "invalid")) from None
        events = [
            event
            for event in self._events.get(sub, [])
            if (time_min is None or event.ends_at > time_min)
            and (time_max is None or event.starts_at < time_max)
        ]
        if order_by == "startTime":
            events.sort(key=lambda event: event.starts_at)
        page = events[offset : offset + max_results]
        body: dict[str, object] = {
            "kind": "calendar#events",
            "summary": sub,
            "timeZone": "UTC",
            "accessRole": "owner",
            "defaultReminders": [],
            "items": [event.as_json() for event in page],
        }
        if offset + max_results < len(events):
            body["nextPageToken"] = str(offset + max_results)
        return _json(body)

    def _insert_event(self, request: Request, sub: str, email: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _Reply(_google_error(400, "Parse Error", "parseError"))
        starts_at, ends_at = _parse_when(body.get("start")), _parse_when(body.get("end"))
        for name, moment in (("start", starts_at), ("end", ends_at)):
            if moment is None:
                raise _Reply(_google_error(400, f"Missing {name} time.", "required"))
        if ends_at is not None and starts_at is not None and ends_at < starts_at:
            raise _Reply(_google_error(400, "The specified time range is empty.", "timeRangeEmpty"))
        summary, description = str(body.get("summary", "")), str(body.get("description", ""))
        event = self._store_event(sub, email, summary, description, body["start"], body["end"])
        return _json(event.as_json())

    def _store_event(
        self,
        sub: str,
        email: str,
        summary: str,
        description: str,
        start: dict[str, str],
        end: dict[str, str],
    ) -> CalendarEvent:
        event_id = secrets.token_hex(13)
        starts_at, ends_at = _parse_when(start), _parse_when(end)
        assert starts_at is not None and ends_at is not None
        event = CalendarEvent(
            id=event_id,
            summary=summary,
            description=description,
            start=start,
            end=end,
            starts_at=starts_at,
            ends_at=ends_at,
            html_link=f"{self._calendar.base_url}calendar/event?eid={event_id}",
            creator_email=email,
            created=datetime.now(UTC),
        )
        self._events.setdefault(sub, []).append(event)
        return event
