"""FakeGoogle: the fake's public face (starting it, its URLs, acting as the person,
arranging and observing) over the accounts layer and the Calendar API."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from tests.fakes.github import s256_challenge
from tests.fakes.google.accounts import _AccountsLayer
from tests.fakes.google.calendar_api import _CalendarApi
from tests.fakes.google.state import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_SCOPE,
    CalendarEvent,
    CalendarRequest,
    GoogleAuthorizeRequest,
    _Failure,
)
from tests.fakes.loopback import LoopbackServer


class FakeGoogle(_AccountsLayer, _CalendarApi):
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
        super().__init__(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=redirect_uris,
            access_token_lifetime=access_token_lifetime,
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
        self._store_user(sub, claims)
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
