"""Google: OpenID Connect with offline access (a refresh token), and Google Calendar.

Settings (``settings.INTEGRATIONS["google"]``, from ``AISYSTEM_GOOGLE_*``): ``CLIENT_ID``,
``CLIENT_SECRET``; ``OIDC_URL`` (the issuer, ``https://accounts.google.com``),
``CALENDAR_URL`` and ``REVOKE_URL`` are there so that tests can point them at loopback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from social_core.backends.open_id_connect import OpenIdConnectAuth

from aisystem.errors import IntegrationError
from aisystem.integrations.base import Provider
from aisystem.integrations.http import app_call
from aisystem.integrations.tokens import ProviderApi

SCOPES = ("openid", "email", "profile", "https://www.googleapis.com/auth/calendar.events")


def _config() -> dict[str, str]:
    return dict(settings.INTEGRATIONS["google"])


class GoogleBackend(OpenIdConnectAuth[Any]):
    """social-core's OpenID Connect backend against Google's issuer: discovery, ``state``,
    ``nonce``, PKCE, id-token validation; ``access_type=offline`` and ``prompt=consent`` so
    that Google sends a refresh token every time someone connects."""

    name = "google"
    title = "Google"
    DEFAULT_SCOPE = list(SCOPES)
    DEFAULT_USE_PKCE = True

    def oidc_endpoint(self) -> str:
        return _config()["OIDC_URL"].rstrip("/")

    def get_key_and_secret(self) -> tuple[str, str]:
        config = _config()
        return config["CLIENT_ID"], config["CLIENT_SECRET"]

    def auth_extra_arguments(self) -> dict[str, str]:
        return {**super().auth_extra_arguments(), "access_type": "offline", "prompt": "consent"}


class Google(Provider):
    name = "google"
    label = "Google"
    backend = GoogleBackend
    scopes = SCOPES
    scope_summary = "read your calendar, and add events you confirm"

    def account_login(self, response: dict[str, Any], details: dict[str, Any]) -> str:
        return str(response.get("email") or details.get("email") or response.get("sub") or "")

    def verified_email(self, response: dict[str, Any]) -> str:
        verified = response.get("email_verified") in (True, "true")
        return str(response.get("email") or "") if verified else ""

    def revoke(self, extra_data: dict[str, Any]) -> None:
        """Google's revoke endpoint with the refresh token (ending the whole grant) or, without
        one, the access token. A token Google no longer knows (400) counts as revoked."""
        token = str(extra_data.get("refresh_token") or extra_data.get("access_token") or "")
        app_call(
            "google",
            "revoke",
            "POST",
            _config()["REVOKE_URL"],
            accept=(200, 400),
            label="Google",
            data={"token": token},
        )


class CalendarApi(ProviderApi):
    """Google Calendar (the primary calendar) with one person's token."""

    service = "google"
    headers: dict[str, str] = {}

    def base_url(self) -> str:
        return _config()["CALENDAR_URL"]

    def list_events(
        self,
        *,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
        max_results: int = 10,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "maxResults": max_results,
            "singleEvents": "true",
            "orderBy": "startTime",
        }
        if time_min is not None:
            params["timeMin"] = time_min.isoformat()
        if time_max is not None:
            params["timeMax"] = time_max.isoformat()
        answer = self.call("GET", "calendars/primary/events", "list_events", params=params)
        items: list[dict[str, Any]] = (answer or {}).get("items", [])
        return items

    def create_event(
        self, *, summary: str, start: datetime, end: datetime, description: str = ""
    ) -> dict[str, Any]:
        if end <= start:
            raise IntegrationError("google", "create_event", "the end is not after the start")
        payload = {
            "summary": summary,
            "description": description,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": end.isoformat()},
        }
        result: dict[str, Any] = self.call(
            "POST", "calendars/primary/events", "create_event", json=payload
        )
        return result
