"""Loopback fakes of Google for the Calendar integration: the accounts server (OpenID
Connect, through oidc-provider-mock) and a small Calendar API, both real HTTP servers.

oidc-provider-mock 0.3.4 (authlib on Flask) supplies the authorize page, the token endpoint
(authorization code and refresh grants), signed ID tokens, JWKS, discovery and userinfo. A
thin WSGI layer in front of it adds what Google does and the mock does not:

* PKCE: the mock ignores ``code_challenge``; the layer checks ``code_verifier`` (S256 or
  plain) and answers ``invalid_grant`` as Google does.
* Refresh tokens: the mock issues one with every code. The layer passes it on only when the
  authorize request said ``access_type=offline`` and this is the person's first consent to
  this app (or ``prompt=consent`` asked again), as Google does.
* Refresh requests with the client secret in the form body: the mock accepts only HTTP Basic
  for that grant, so the layer moves the credentials into the header. It counts them too.
* Revocation: the mock has none. ``POST /revoke`` (form ``token=``, like
  https://oauth2.googleapis.com/revoke) deletes the token from the mock's own storage along
  with every other token of the same subject (Google revokes the grant; with one client per
  test that is the same set), so userinfo and the calendar refuse them at once.
* Discovery gains ``revocation_endpoint`` and ``code_challenge_methods_supported``.

Remaining differences: refreshing does not rotate the refresh token (as Google), but it deletes
the access token issued with the code (Google lets it live until it expires); refreshed tokens
live 3600 s whatever ``access_token_lifetime`` says; scopes outside OpenID's and Calendar's
are dropped silently; the issuer is ``http://127.0.0.1:PORT``, not https://accounts.google.com.
The mock's authorize page asks only for the subject (``sub``): ``authorize`` stores the other
claims (email, email_verified, name) in the mock before submitting the form.

The layer reaches into the mock's internals (its ``Storage`` and ``Client``, as of 0.3.4);
tests/fakes/test_provider_fakes.py notices if an upgrade moves them.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import flask
import oidc_provider_mock
import requests
from oidc_provider_mock._storage import Client, ClientAllowAny, Storage, User
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.github import LoopbackServer, s256_challenge

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

CLIENT_ID = "google-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "google-client-secret"  # made up: the fake's default OAuth client
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
CALENDAR_EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
_READ_SCOPES = {
    CALENDAR_SCOPE,
    CALENDAR_EVENTS_SCOPE,
    f"{CALENDAR_SCOPE}.readonly",
    f"{CALENDAR_EVENTS_SCOPE}.readonly",
}
_WRITE_SCOPES = {CALENDAR_SCOPE, CALENDAR_EVENTS_SCOPE}
DEFAULT_SCOPE = f"openid email profile {CALENDAR_EVENTS_SCOPE}"


class _GoogleClient(Client):
    """A confidential client: it must authenticate with its secret, in the body or in Basic."""

    def check_endpoint_auth_method(self, method: str, endpoint: object) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}


@dataclass(frozen=True)
class GoogleAuthorizeRequest:
    """What a client sent to the authorize page."""

    client_id: str
    redirect_uri: str | None
    state: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    access_type: str | None
    prompt: str | None
    nonce: str | None


@dataclass(frozen=True)
class CalendarRequest:
    method: str
    path: str
    token: str | None
    query: dict[str, str]
    status: int


@dataclass
class CalendarEvent:
    id: str
    summary: str
    description: str
    start: dict[str, str]
    end: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    html_link: str
    creator_email: str
    created: datetime

    def as_json(self) -> dict[str, object]:
        stamp = self.created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event: dict[str, object] = {
            "kind": "calendar#event",
            "etag": f'"{int(self.created.timestamp() * 1000)}"',
            "id": self.id,
            "status": "confirmed",
            "htmlLink": self.html_link,
            "created": stamp,
            "updated": stamp,
            "summary": self.summary,
            "creator": {"email": self.creator_email, "self": True},
            "organizer": {"email": self.creator_email, "self": True},
            "start": self.start,
            "end": self.end,
            "iCalUID": f"{self.id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        if self.description:
            event["description"] = self.description
        return event


@dataclass(frozen=True)
class _CodeContext:
    code_challenge: str | None
    code_challenge_method: str
    offline: bool
    asked_consent: bool
    sub: str


@dataclass
class _Failure:
    method: str
    path_prefix: str
    status: int
    times: int
    retry_after: int | None


class _Reply(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json; charset=UTF-8")


def _google_error(status: int, message: str, reason: str, **extra: str) -> Response:
    """Google's API error envelope."""
    status_names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
    status_names |= {404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
    error = {"message": message, "domain": "global", "reason": reason, **extra}
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [error],
            "status": status_names.get(status, "UNKNOWN"),
        }
    }
    return _json(body, status)


def _unauthenticated(invalid: bool) -> _Reply:
    """401 as the Calendar API sends it, for a missing or a refused access token."""
    message = (
        "Request had invalid authentication credentials."
        if invalid
        else "Request is missing required authentication credential."
    ) + " Expected OAuth 2 access token, login cookie or other valid authentication credential."
    response = _google_error(
        401,
        message,
        "authError" if invalid else "required",
        location="Authorization",
        locationType="header",
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"' + (
        ', error="invalid_token"' if invalid else ""
    )
    return _Reply(response)


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


class FakeGoogle:
    """Google's accounts server and Calendar API on loopback; a context manager.

    ``issuer`` is the OpenID Connect issuer (discovery at
    ``issuer + "/.well-known/openid-configuration"``); the endpoints are ``authorization_url``,
    ``token_url``, ``userinfo_url``, ``jwks_url`` and ``revoke_url``. ``calendar_url`` is the
    Calendar API root, like https://www.googleapis.com/calendar/v3/. The client must be
    ``client_id``/``client_secret``; ``redirect_uris``, when given, are the only ones allowed.
    """

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        redirect_uris: Sequence[str] | None = None,
        access_token_lifetime: timedelta = timedelta(hours=1),
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._lock = threading.Lock()
        self._authorize_requests: list[GoogleAuthorizeRequest] = []
        self._codes: dict[str, _CodeContext] = {}
        self._consented: set[str] = set()
        self._refresh_requests = 0
        self._events: dict[str, list[CalendarEvent]] = {}
        self._calendar_requests: list[CalendarRequest] = []
        self._failures: list[_Failure] = []
        self._provider = oidc_provider_mock.app(
            require_client_registration=True, access_token_max_age=access_token_lifetime
        )
        self._storage = _storage_of(self._provider)
        self._storage.store_client(
            _GoogleClient(
                id=client_id,
                secret=client_secret,
                redirect_uris=list(redirect_uris) if redirect_uris else ClientAllowAny(),
                allowed_scopes=(*Client.SCOPES_SUPPORTED, *_READ_SCOPES),
                token_endpoint_auth_method=ClientAllowAny(),
            )
        )
        self._accounts = LoopbackServer(self._accounts_wsgi)
        self._calendar = LoopbackServer(self._calendar_wsgi)

    # Lifecycle and URLs

    def start(self) -> Self:
        self._accounts.start()
        self._calendar.start()
        return self

    def stop(self) -> None:
        self._calendar.stop()
        self._accounts.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def issuer(self) -> str:
        return self._accounts.base_url.rstrip("/")

    @property
    def authorization_url(self) -> str:
        return f"{self.issuer}/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth2/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.issuer}/userinfo"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def revoke_url(self) -> str:
        return f"{self.issuer}/revoke"

    @property
    def calendar_url(self) -> str:
        return f"{self._calendar.base_url}calendar/v3/"

    # Acting as the person

    def authorize(
        self,
        session: requests.Session,
        authorize_url: str,
        sub: str,
        email: str,
        email_verified: bool = True,
        name: str | None = None,
    ) -> str:
        """Open ``authorize_url`` and submit the mock's form as ``sub``, the way a person
        would; return the redirect (callback URL with ``code`` and ``state``), unfollowed.

        Raises AssertionError when the page does not show the form (a refused client or
        redirect URI) or the answer is not a redirect.
        """
        claims: dict[str, object] = {"email": email, "email_verified": email_verified}
        claims["name"] = name if name is not None else email.split("@")[0].title()
        self._storage.store_user(User(sub=sub, claims=claims))
        page = session.get(authorize_url, timeout=10)
        if page.status_code != 200 or 'name="sub"' not in page.text:
            raise AssertionError(f"no authorize form ({page.status_code}): {page.text[:300]}")
        # The form has no action: the browser posts it back to the page's own URL.
        answer = session.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
        if answer.status_code != 302:
            raise AssertionError(f"authorize answered {answer.status_code}: {answer.text[:300]}")
        return answer.headers["Location"]

    def deny(self, session: requests.Session, authorize_url: str) -> str:
        """Press the form's Deny button; return the redirect carrying ``error=access_denied``."""
        answer = session.post(
            authorize_url, data={"action": "deny"}, allow_redirects=False, timeout=10
        )
        return answer.headers["Location"]

    def obtain_tokens(
        self,
        sub: str,
        email: str,
        *,
        scope: str = DEFAULT_SCOPE,
        redirect_uri: str = "http://127.0.0.1/oauth/complete/google-oauth2/",
    ) -> dict[str, object]:
        """The whole web flow (offline access, PKCE) by plain requests: the token answer."""
        verifier = secrets.token_urlsafe(48)
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": secrets.token_urlsafe(16),
            "access_type": "offline",
            "prompt": "consent",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
        with requests.Session() as session:
            url = f"{self.authorization_url}?{urlencode(query)}"
            callback = self.authorize(session, url, sub, email)
            code = dict(parse_qsl(urlsplit(callback).query))["code"]
            answer = session.post(
                self.token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "code_verifier": verifier,
                },
                timeout=10,
            )
        answer.raise_for_status()
        tokens: dict[str, object] = answer.json()
        return tokens

    # Arranging and observing

    def add_event(
        self, sub: str, *, summary: str, start: datetime, end: datetime, description: str = ""
    ) -> CalendarEvent:
        """An event already in ``sub``'s primary calendar."""
        with self._lock:
            return self._store_event(
                sub,
                sub,
                summary,
                description,
                {"dateTime": start.isoformat()},
                {"dateTime": end.isoformat()},
            )

    def events(self, sub: str) -> list[CalendarEvent]:
        with self._lock:
            return list(self._events.get(sub, []))

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` Calendar requests for ``method`` under ``path_prefix`` (from the
        server root, e.g. ``"/calendar/v3/calendars/primary/events"``) answer ``status`` in
        Google's error format (429 and 403 as ``rateLimitExceeded``)."""
        with self._lock:
            self._failures.append(_Failure(method.upper(), path_prefix, status, times, retry_after))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now; refresh tokens keep working."""
        past = datetime.now(UTC) - timedelta(seconds=1)
        for token in self._storage.access_tokens():
            self._storage.store_access_token(dataclasses.replace(token, expires_at=past))

    def token_is_active(self, access_token: str) -> bool:
        token = self._storage.get_access_token(access_token)
        return token is not None and not token.is_expired()

    @property
    def authorize_requests(self) -> list[GoogleAuthorizeRequest]:
        with self._lock:
            return list(self._authorize_requests)

    @property
    def calendar_requests(self) -> list[CalendarRequest]:
        with self._lock:
            return list(self._calendar_requests)

    @property
    def refresh_requests(self) -> int:
        """How many ``grant_type=refresh_token`` requests arrived, refused ones included."""
        with self._lock:
            return self._refresh_requests

    # The accounts server: a layer in front of the mock

    def _accounts_wsgi(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        request = Request(environ, populate_request=False)
        if request.path == "/revoke" and request.method == "POST":
            response = self._revoke(request)
        elif request.path == "/oauth2/authorize":
            response = self._authorize(request, environ)
        elif request.path == "/oauth2/token" and request.method == "POST":
            response = self._token(environ)
        elif request.path == "/.well-known/openid-configuration":
            response = self._discovery(environ)
        else:
            return self._provider(environ, start_response)
        return response(environ, start_response)

    def _through_mock(self, environ: WSGIEnvironment) -> Response:
        return Response.from_app(self._provider, environ, buffered=True)

    def _authorize(self, request: Request, environ: WSGIEnvironment) -> Response:
        args = request.args
        if request.method == "GET":
            with self._lock:
                self._authorize_requests.append(
                    GoogleAuthorizeRequest(
                        client_id=args.get("client_id", ""),
                        redirect_uri=args.get("redirect_uri"),
                        state=args.get("state"),
                        scope=args.get("scope", ""),
                        code_challenge=args.get("code_challenge"),
                        code_challenge_method=args.get("code_challenge_method"),
                        access_type=args.get("access_type"),
                        prompt=args.get("prompt"),
                        nonce=args.get("nonce"),
                    )
                )
            return self._through_mock(environ)
        form = _read_form(environ)
        response = self._through_mock(environ)
        location = dict(parse_qsl(urlsplit(response.headers.get("Location", "")).query))
        if "code" in location:
            with self._lock:
                self._codes[location["code"]] = _CodeContext(
                    code_challenge=args.get("code_challenge"),
                    code_challenge_method=args.get("code_challenge_method", "plain"),
                    offline=args.get("access_type") == "offline",
                    asked_consent="consent" in args.get("prompt", "").split(),
                    sub=form.get("sub", ""),
                )
        return response

    def _token(self, environ: WSGIEnvironment) -> Response:
        form = _read_form(environ)
        if form.get("grant_type") == "refresh_token":
            with self._lock:
                self._refresh_requests += 1
            _move_client_secret_to_basic_auth(environ, form)
            return self._through_mock(environ)
        with self._lock:
            context = self._codes.pop(form.get("code", ""), None)
        if context is not None and context.code_challenge is not None:
            refusal = _pkce_refusal(context, form.get("code_verifier"))
            if refusal is not None:
                self._storage.remove_authorization_code(form.get("code", ""))
                return _json({"error": "invalid_grant", "error_description": refusal}, 400)
        response = self._through_mock(environ)
        if response.status_code == 200 and context is not None:
            self._keep_refresh_token_only_on_first_offline_consent(response, context)
        return response

    def _keep_refresh_token_only_on_first_offline_consent(
        self, response: Response, context: _CodeContext
    ) -> None:
        with self._lock:
            first_consent = context.sub not in self._consented or context.asked_consent
            keep = context.offline and first_consent
            if keep:
                self._consented.add(context.sub)
        tokens = json.loads(response.get_data())
        refresh_token = tokens.pop("refresh_token", None)
        if keep or refresh_token is None:
            return
        self._storage.remove_refresh_token(refresh_token)
        response.set_data(json.dumps(tokens))

    def _discovery(self, environ: WSGIEnvironment) -> Response:
        response = self._through_mock(environ)
        document = json.loads(response.get_data())
        document["revocation_endpoint"] = f"{document['issuer']}/revoke"
        document["code_challenge_methods_supported"] = ["plain", "S256"]
        response.set_data(json.dumps(document))
        return response

    def _revoke(self, request: Request) -> Response:
        """Google's revoke: the token and the rest of its grant stop working."""
        value = request.form.get("token") or request.args.get("token", "")
        token = self._storage.get_access_token(value) or self._storage.get_refresh_token(value)
        if token is None:
            return _json(
                {"error": "invalid_token", "error_description": "Token expired or revoked"}, 400
            )
        for access in self._storage.access_tokens():
            if access.user_id == token.user_id:
                self._storage.remove_access_token(access.token)
        for refresh in self._storage.refresh_tokens():
            if refresh.user_id == token.user_id:
                self._storage.remove_refresh_token(refresh.token)
        with self._lock:
            self._consented.discard(token.user_id)
        return _json({})

    # The Calendar API

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


def _storage_of(app: flask.Flask) -> Storage:
    """The mock keeps its state in a Storage its before-request hook puts on ``flask.g``;
    run that hook once to hold the same object."""
    with app.test_request_context("/"):
        app.preprocess_request()
        storage: Storage = flask.g.oidc_provider_mock_storage
    return storage


def _read_form(environ: WSGIEnvironment) -> dict[str, str]:
    """The urlencoded body, read and put back so the mock can read it too."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))


def _move_client_secret_to_basic_auth(environ: WSGIEnvironment, form: dict[str, str]) -> None:
    """The mock takes refresh-grant credentials only as HTTP Basic (RFC 6749 2.3.1 encoding)."""
    if "HTTP_AUTHORIZATION" in environ or "client_secret" not in form:
        return
    credentials = f"{quote(form.pop('client_id', ''))}:{quote(form.pop('client_secret'))}"
    environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    raw = urlencode(form).encode()
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))


def _pkce_refusal(context: _CodeContext, verifier: str | None) -> str | None:
    """Why Google would refuse ``verifier`` for this code, or None when it matches."""
    if not verifier:
        return "Missing code verifier."
    if context.code_challenge_method.upper() == "S256":
        matches = s256_challenge(verifier) == context.code_challenge
    else:
        matches = verifier == context.code_challenge
    return None if matches else "Invalid code verifier."
