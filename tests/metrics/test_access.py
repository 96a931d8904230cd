"""Who may read ``/metrics``: an API token or a staff session; 401 and 403 otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from aisystem.metrics.access import MetricsAccess, access_metrics
from aisystem.services.tokens import api_token_create, api_tokens_revoke
from tests.metrics.scrape import bearer, scrape_parse

pytestmark = pytest.mark.django_db
URL = "/metrics"


def person(*, staff: bool, active: bool = True) -> Any:
    user = get_user_model().objects.create_user(
        "staffer" if staff else "member", password="a-long-Passw0rd"
    )
    user.is_staff, user.is_active = staff, active
    user.save()
    return user


def test_an_api_token_reads_the_metrics_as_prometheus_text() -> None:
    _, plaintext = api_token_create(name="prometheus")

    response = Client().get(URL, headers=bearer(plaintext))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    names = {name for name, _ in scrape_parse(response.content.decode()).samples}
    assert {
        "aisystem_pipeline_step_seconds_count",
        "aisystem_claude_requests_total",
        "aisystem_claude_tokens_total",
        "aisystem_webhook_deliveries_total",
        "aisystem_websocket_connections",
        "aisystem_queue_depth",
    } <= names


def test_a_token_needs_no_access_rule_to_read_the_metrics() -> None:
    _, plaintext = api_token_create(name="scraper", allow=False)

    assert Client().get(URL, headers=bearer(plaintext)).status_code == 200


def test_a_staff_session_reads_the_metrics(client: Client) -> None:
    client.force_login(person(staff=True))

    assert client.get(URL).status_code == 200


def test_a_signed_in_member_who_is_not_staff_is_forbidden(client: Client) -> None:
    client.force_login(person(staff=False))

    response = client.get(URL)

    assert response.status_code == 403
    assert response.json() == {"detail": "Only staff may read the metrics."}


def test_no_credentials_is_401_with_a_bearer_challenge() -> None:
    response = Client().get(URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "API token" in response.json()["detail"]
    assert b"aisystem_" not in response.content


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ais_not-a-real-token",
        "Bearer ",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer sk-ant-xyz",
        "ais_without-a-scheme",
    ],
)
def test_a_bad_authorization_header_is_401(header: str) -> None:
    response = Client().get(URL, headers={"Authorization": header})

    assert response.status_code == 401
    assert b"aisystem_" not in response.content


def test_a_revoked_token_is_401() -> None:
    token, plaintext = api_token_create(name="old")
    api_tokens_revoke(tokens=[token])

    assert Client().get(URL, headers=bearer(plaintext)).status_code == 401


def test_a_bad_token_is_refused_even_beside_a_staff_session(client: Client) -> None:
    client.force_login(person(staff=True))

    response = client.get(URL, headers={"Authorization": "Bearer ais_wrong"})

    assert response.status_code == 401


def test_only_get_is_allowed() -> None:
    _, plaintext = api_token_create(name="prometheus")

    assert Client().post(URL, headers=bearer(plaintext)).status_code == 405


class TestAccessMetrics:
    """The decision itself, one condition at a time."""

    def test_anonymous_and_missing_users_are_asked_for_credentials(self) -> None:
        for user in (None, AnonymousUser()):
            assert access_metrics(authorization=None, user=user) == MetricsAccess(
                False, 401, "anonymous"
            )

    def test_an_inactive_staff_member_is_forbidden(self) -> None:
        user = get_user_model()(username="gone", is_staff=True, is_active=False)
        assert access_metrics(authorization=None, user=user) == MetricsAccess(
            False, 403, "inactive"
        )

    def test_a_member_without_staff_status_is_forbidden(self) -> None:
        user = get_user_model()(username="member", is_staff=False, is_active=True)
        assert access_metrics(authorization=None, user=user) == MetricsAccess(
            False, 403, "not_staff"
        )

    def test_active_staff_may_read(self) -> None:
        user = get_user_model()(username="staff", is_staff=True, is_active=True)
        assert access_metrics(authorization=None, user=user).allowed

    def test_a_header_decides_whatever_the_session(self) -> None:
        staff = get_user_model()(username="staff", is_staff=True, is_active=True)
        _, plaintext = api_token_create(name="prometheus")

        assert access_metrics(authorization=f"bearer {plaintext}", user=None).allowed
        assert access_metrics(authorization="Token abc", user=staff) == MetricsAccess(
            False, 401, "not_bearer"
        )
        assert access_metrics(authorization="Bearer   ", user=staff) == MetricsAccess(
            False, 401, "empty_token"
        )
        assert access_metrics(authorization="Bearer ais_nope", user=staff) == MetricsAccess(
            False, 401, "unknown_token"
        )
