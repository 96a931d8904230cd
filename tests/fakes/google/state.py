"""What the fake Google holds: the mock provider and its storage (with this app's client
registered), the codes and consents the accounts layer tracks, the calendars' events, and
the requests it recorded."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import flask
import oidc_provider_mock
from oidc_provider_mock._storage import Client, ClientAllowAny, Storage, User

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


class _GoogleState:
    """The state FakeGoogle and its two servers' mixins share, guarded by ``_lock``."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: Sequence[str] | None,
        access_token_lifetime: timedelta,
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

    def _store_user(self, sub: str, claims: dict[str, object]) -> None:
        """The person ``sub`` with ``claims``, for the mock's authorize form to sign in as."""
        self._storage.store_user(User(sub=sub, claims=claims))


def _storage_of(app: flask.Flask) -> Storage:
    """The mock keeps its state in a Storage its before-request hook puts on ``flask.g``;
    run that hook once to hold the same object."""
    with app.test_request_context("/"):
        app.preprocess_request()
        storage: Storage = flask.g.oidc_provider_mock_storage
    return storage
