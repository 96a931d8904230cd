"""Forwarded headers count only from trusted proxies (aisystem/forwarded.py)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.test import Client

from aisystem.forwarded import ForwardedOrigin, forwarded_origin

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def origin(peer: str, forwarded_for: str | None = None, proto: str | None = None) -> Any:
    return forwarded_origin(peer, forwarded_for, proto, PROXIES)


def test_without_trusted_proxies_the_connection_is_the_client_whatever_it_claims() -> None:
    assert forwarded_origin("203.0.113.9", "198.51.100.1", "https", ()) == ForwardedOrigin(
        address="203.0.113.9", scheme=None, hops=0
    )


def test_a_client_that_is_not_a_proxy_cannot_claim_another_address() -> None:
    assert origin("203.0.113.9", "10.0.0.1, 198.51.100.1", "https").address == "203.0.113.9"


def test_behind_one_proxy_the_client_is_the_address_it_appended() -> None:
    assert origin("10.0.0.2", "198.51.100.7", "https") == ForwardedOrigin(
        address="198.51.100.7", scheme="https", hops=1
    )


def test_what_a_client_wrote_before_the_proxy_appended_is_ignored() -> None:
    # The client sent "X-Forwarded-For: 192.0.2.66"; the proxy appended the real address.
    assert origin("10.0.0.2", "192.0.2.66, 198.51.100.7").address == "198.51.100.7"


def test_each_trusted_hop_is_counted_from_the_right() -> None:
    found = origin("10.0.0.2", "192.0.2.66, 198.51.100.7, 10.0.0.3", "https, http")
    assert found == ForwardedOrigin(address="198.51.100.7", scheme="https", hops=2)


def test_a_forged_scheme_before_the_proxys_own_is_ignored() -> None:
    # The client sent "X-Forwarded-Proto: https" over plain HTTP; the proxy appended "http".
    assert origin("10.0.0.2", "198.51.100.7", "https, http").scheme == "http"


def test_only_http_and_https_are_schemes() -> None:
    assert origin("10.0.0.2", "198.51.100.7", "javascript").scheme is None


def test_addresses_are_read_as_proxies_write_them() -> None:
    assert origin("::1", "[2001:db8::5]:4711").address == "2001:db8::5"
    assert origin("::ffff:10.0.0.2", "198.51.100.7:80").address == "198.51.100.7"


def test_garbage_in_the_chain_stops_at_the_last_trusted_hop() -> None:
    assert origin("10.0.0.2", "unknown").address == "10.0.0.2"
    assert origin("10.0.0.2", "<script>, 10.0.0.3").address == "10.0.0.3"


def test_a_request_from_the_proxy_itself_is_the_proxys() -> None:
    assert origin("10.0.0.2") == ForwardedOrigin(address="10.0.0.2", scheme=None, hops=1)


# --- In the request cycle ---------------------------------------------------------------------


def echo_client(settings: Any, trusted: str) -> Client:
    settings.TRUSTED_PROXIES = tuple(ipaddress.ip_network(net) for net in trusted.split(",") if net)
    settings.SECURE_PROXY_SSL_HEADER = (
        ("HTTP_X_FORWARDED_PROTO", "https") if settings.TRUSTED_PROXIES else None
    )
    settings.SECURE_SSL_REDIRECT = True
    return Client()


@pytest.mark.django_db
def test_https_is_believed_only_from_a_trusted_proxy(settings: Any) -> None:
    """With SECURE_SSL_REDIRECT on, a plain request is redirected to HTTPS, and one a trusted
    proxy says came over HTTPS is served; a client saying so itself is redirected."""
    client = echo_client(settings, "10.0.0.0/8")
    from_proxy = client.get(
        "/accounts/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https"
    )
    forged = client.get(
        "/accounts/login/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_PROTO="https"
    )
    assert from_proxy.status_code == 200
    assert (forged.status_code, forged["Location"]) == (
        301,
        "https://testserver/accounts/login/",
    )


@pytest.mark.django_db
def test_without_trusted_proxies_a_forwarded_scheme_is_not_https(settings: Any) -> None:
    client = echo_client(settings, "")
    response = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
