"""Security headers on the pages people open: a CSP without inline scripts, a
Permissions-Policy, and no caching of the pages that show conversations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.helpers import ROOT


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.fixture
def staff_user() -> Any:
    return UserFactory(username="grace", is_staff=True, is_superuser=True)


PAGES = ["/chat/", "/live/", "/accounts/login/", "/admin/", "/admin/aisystem/message/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_page_allows_scripts_and_styles_from_our_files_only(
    client: Client, staff_user: Any, path: str
) -> None:
    if not path.startswith("/accounts/"):  # a signed-in visitor is sent on from there
        client.force_login(staff_user)
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_sign_in_page_has_the_policy_too_for_anonymous_visitors(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert directives(response)["script-src"] == ["'self'"]
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/chat/", "/live/", "/accounts/login/"])
def test_pages_with_conversations_are_never_stored(
    client: Client, staff_user: Any, path: str
) -> None:
    if not path.startswith("/accounts/"):
        client.force_login(staff_user)
    response = client.get(path)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_redirect_to_sign_in_is_not_stored_either(client: Client) -> None:
    response = client.get("/chat/")
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_a_permissions_policy_turns_off_what_no_page_uses(client: Client) -> None:
    header = client.get("/accounts/login/")["Permissions-Policy"]
    features = dict(re.findall(r"([a-z-]+)=\(([^)]*)\)", header))
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert features[feature] == ""


# No template may bring back an inline script or handler, which the policy would block.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE_ELEMENT = re.compile(r"<style\b")


def test_no_template_has_an_inline_script_handler_or_style_element() -> None:
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        html = template.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, INLINE_STYLE_ELEMENT):
            offenders += [
                f"{template.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(html)
            ]
    assert offenders == []


SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
    "proxies": [str(network) for network in settings.TRUSTED_PROXIES],
}))
"""


def settings_with(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SETTINGS],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "aisystem.settings",
            "AISYSTEM_DATA_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow  # starts Python processes
def test_https_settings_are_off_by_default_and_set_from_the_environment(tmp_path: Path) -> None:
    default = json.loads(settings_with(tmp_path).stdout)
    assert default == {
        "ssl_redirect": False,
        "hsts": 0,
        "subdomains": True,
        "proxy_header": None,
        "proxies": [],
    }
    production = settings_with(
        tmp_path,
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        AISYSTEM_TRUSTED_PROXIES="10.0.0.5, 192.168.0.0/16,::1",
    )
    assert json.loads(production.stdout) == {
        "ssl_redirect": True,
        "hsts": 31536000,
        "subdomains": True,
        "proxy_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "proxies": ["10.0.0.5/32", "192.168.0.0/16", "::1/128"],
    }


@pytest.mark.slow  # starts a Python process
def test_a_mistyped_trusted_proxy_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    result = settings_with(tmp_path, AISYSTEM_TRUSTED_PROXIES="10.0.0.5,nginx")
    assert result.returncode != 0
    assert "AISYSTEM_TRUSTED_PROXIES: 'nginx' is not an IP address or CIDR block" in result.stderr
