"""``manage.py webhooks add|list|remove``: the secret on the last line, clear errors."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from standardwebhooks import Webhook

from aisystem.models import WebhookSubscription
from tests.helpers import manage, subprocess_database_url

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("webhooks", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_add_prints_the_signing_secret_on_its_last_line() -> None:
    out, err = run(
        "add",
        "--name",
        "ops",
        "--url",
        "https://hooks.example.com/in",
        "--events",
        "job.failed, breaker.opened",
    )

    secret = out.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    Webhook(secret)  # a secret the library accepts
    subscription = WebhookSubscription.objects.get(name="ops")
    assert subscription.signing_secret == secret
    assert subscription.event_types == ["job.failed", "breaker.opened"]
    assert subscription.url == "https://hooks.example.com/in"
    assert "not shown again" in err


def test_list_shows_each_subscription_without_its_secret() -> None:
    out, _ = run(
        "add", "--name", "ops", "--url", "https://hooks.example.com/in", "--events", "job.failed"
    )
    secret = out.strip()

    listing, _ = run("list")

    assert listing.splitlines() == ["ops\thttps://hooks.example.com/in\tjob.failed\tactive"]
    assert secret not in listing


def test_remove_deletes_the_subscription() -> None:
    run("add", "--name", "ops", "--url", "https://hooks.example.com/in", "--events", "job.failed")

    run("remove", "ops")

    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--events", "job.failed,message.teleported"), "message.teleported is unknown"),
        (("--events", "gate.allowed"), r"internal \(not sent by webhook\)"),
        (("--events", " , "), "at least one event type"),
        (("--url", "ftp://hooks.example.com/in"), "only http:// and https://"),
        (("--url", "http://127.0.0.1:5432/"), "private, loopback or link-local"),
        (("--name", ""), "The name must be"),
    ],
)
def test_add_refuses_bad_input_with_a_clear_error(args: tuple[str, ...], message: str) -> None:
    options = {"--name": "ops", "--url": "https://hooks.example.com/in", "--events": "job.failed"}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))

    with pytest.raises(CommandError, match=message):
        run("add", *[item for pair in options.items() for item in pair])

    assert not WebhookSubscription.objects.exists()


def test_add_refuses_a_name_in_use() -> None:
    run("add", "--name", "ops", "--url", "https://hooks.example.com/in", "--events", "job.failed")

    with pytest.raises(CommandError, match="exists already"):
        run("add", "--name", "ops", "--url", "https://b.example.com/", "--events", "job.failed")


def test_removing_an_unknown_name_is_an_error() -> None:
    with pytest.raises(CommandError, match="no webhook named 'nope'"):
        run("remove", "nope")


@pytest.mark.django_db(transaction=True)
def test_from_the_shell_an_error_exits_non_zero_without_a_traceback(settings: Any) -> None:
    env = {"DATABASE_URL": subprocess_database_url()}

    unknown = manage(
        "webhooks",
        "add",
        "--name",
        "ops",
        "--url",
        "https://hooks.example.com/in",
        "--events",
        "nope.never",
        env=env,
    )
    private = manage(
        "webhooks",
        "add",
        "--name",
        "ops",
        "--url",
        "http://localhost:9/",
        "--events",
        "job.failed",
        env=env,
    )
    added = manage(
        "webhooks",
        "add",
        "--name",
        "ops",
        "--url",
        "https://hooks.example.com/in",
        "--events",
        "job.failed",
        env=env,
    )

    for result in (unknown, private):
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("CommandError: ")
    assert "nope.never is unknown" in unknown.stderr
    assert "localhost resolves to" in private.stderr
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip().splitlines()[-1].startswith("whsec_")
