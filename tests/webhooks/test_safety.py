"""Which URLs webhooks may reach: http(s) only, public addresses only unless allowed, checked
when saved and again at connect time (DNS rebinding); and the retry schedule's setting."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from aisystem.events import system_event_emit
from aisystem.models import WebhookDelivery, WebhookSubscription
from aisystem.webhooks import safety
from aisystem.webhooks.http import webhook_post
from aisystem.webhooks.retry import retry_delay, retry_schedule_parse
from aisystem.webhooks.safety import UnsafeUrl, address_allowed, url_check, url_validate
from aisystem.webhooks.services import WebhookConfigError, webhook_subscription_create
from tests.helpers import manage
from tests.webhooks.conftest import deliver_due
from tests.webhooks.receiver import Receiver

IP = ipaddress.ip_address


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/in",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https:///no-host",
        "https://user:pass@hooks.example.com/in",
        "https://hooks.example.com:99999/in",
        "not a url",
    ],
)
def test_only_plain_http_and_https_urls_with_a_host_are_accepted(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        url_check(url)


def test_a_url_is_split_into_what_the_connection_needs() -> None:
    target = url_check("https://hooks.example.com/in?token=1")

    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        443,
        "/in?token=1",
    )


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata address
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104  (an address refused, not one bound)
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    assert not address_allowed(IP(address), allow_private=False)
    assert address_allowed(IP(address), allow_private=True)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(IP(address), allow_private=False)


def test_a_literal_loopback_url_is_refused_when_saved() -> None:
    with pytest.raises(UnsafeUrl, match="private, loopback or link-local"):
        url_validate("http://127.0.0.1:8000/admin/", allow_private=False)


def test_a_name_resolving_to_loopback_is_refused_without_the_flag() -> None:
    with pytest.raises(UnsafeUrl, match=r"localhost resolves to (127\.0\.0\.1|::1)"):
        url_validate("http://localhost:8000/in", allow_private=False)


def test_a_name_that_does_not_resolve_yet_may_be_saved() -> None:
    # The test guard makes every non-loopback name fail to resolve, as DNS being down would.
    assert url_validate(" https://hooks.example.com/in ", allow_private=False) == (
        "https://hooks.example.com/in"
    )


@pytest.mark.django_db
def test_a_subscription_to_a_private_address_is_refused_with_a_clear_message() -> None:
    with pytest.raises(WebhookConfigError, match="AISYSTEM_WEBHOOK_ALLOW_PRIVATE"):
        webhook_subscription_create(
            name="internal", url="http://localhost/in", event_types=["job.failed"]
        )

    assert not WebhookSubscription.objects.exists()


def test_the_connection_refuses_a_name_that_now_resolves_to_loopback(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name was public when saved; at connect time it is 127.0.0.1."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    monkeypatch.setattr(safety, "addresses_resolve", lambda host, port: [IP("127.0.0.1")])

    result = webhook_post(
        f"http://hooks.example.com:{port}/in", b"{}", {}, allow_private=False, timeout=2
    )

    assert result.status_code is None
    assert result.error.startswith("refused: hooks.example.com resolves to 127.0.0.1")
    assert receiver.received == []


def test_the_connection_goes_to_the_address_that_was_checked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host name is only looked up once, by the check; the socket uses that answer, and
    the request still names the host."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    monkeypatch.setattr(safety, "addresses_resolve", lambda host, port: [IP("127.0.0.1")])

    result = webhook_post(
        f"http://hooks.example.com:{port}/in", b"{}", {}, allow_private=True, timeout=2
    )

    assert result.status_code == 200
    [request] = receiver.received
    assert request.headers["host"] == f"hooks.example.com:{port}"


@pytest.mark.django_db
def test_a_delivery_to_an_endpoint_that_turned_private_fails_and_is_retried(
    receiver: Receiver, settings: Any
) -> None:
    webhook_subscription_create(name="ops", url=receiver.url, event_types=["job.failed"])
    settings.WEBHOOK_ALLOW_PRIVATE = False
    system_event_emit("job.failed", "failed", job="j", func="f", group="")

    assert deliver_due() == [WebhookDelivery.Status.PENDING]

    assert "refused: 127.0.0.1 resolves to 127.0.0.1" in WebhookDelivery.objects.get().last_error
    assert receiver.received == []


# --- The retry schedule -----------------------------------------------------------------------


def test_the_retry_schedule_reads_seconds_minutes_hours_and_days() -> None:
    assert retry_schedule_parse("5s, 5m,30m,2h ,1d") == (
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(days=1),
    )


@pytest.mark.parametrize("raw", ["5", "5x", "0s", "-5s", "five minutes", "5s;5m", "1.5h"])
def test_a_bad_retry_schedule_names_the_setting_and_the_item(raw: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="AISYSTEM_WEBHOOK_RETRY_SCHEDULE"):
        retry_schedule_parse(raw)


def test_each_delay_has_jitter_and_the_schedule_ends() -> None:
    schedule = (timedelta(minutes=10),)
    delays = {retry_delay(schedule, 1) for _ in range(20)}

    assert all(d is not None and timedelta(minutes=9) <= d <= timedelta(minutes=11) for d in delays)
    assert len(delays) > 1
    assert retry_delay(schedule, 2) is None


def test_a_bad_schedule_in_the_environment_stops_start_up_with_a_clear_message() -> None:
    env = {
        "AISYSTEM_WEBHOOK_RETRY_SCHEDULE": "5s,soon",
        "AISYSTEM_DATA_DIR": os.environ.get("AISYSTEM_DATA_DIR", "/tmp/hddata"),
    }

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "AISYSTEM_WEBHOOK_RETRY_SCHEDULE: 'soon' is not a delay" in result.stderr
