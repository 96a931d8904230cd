"""``/export``: the person's data as a JSON file, sent by each transport in its own way
(Telegram: a document; the browser: a download; REST: an address to fetch it from)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings
from django.utils import timezone

from aisystem.models import ChatType, Identity, IntegrationAccount, Reminder, Workspace
from aisystem.services.data_export import EXPORT_FORMAT, identity_export
from aisystem.services.tokens import api_token_create
from pipeline.data_commands import EXPORT_PRIVATE_ONLY
from pipeline.fakeclaude import FakeClaude
from pipeline.processor import DOCUMENT_FAILED, UnifiedMessageProcessor
from tests.conftest import PRIMARY_KEY
from tests.factories import ChatFactory, IdentityFactory, MessageFactory, UserFactory
from tests.usage.conftest import FileRecordingTransport, message

SECRET_TOKEN = "gho_the-access-token-SECRET"
SECRET_REFRESH = "ghr_the-refresh-token-SECRET"


async def connect_github(identity: Identity) -> None:
    user = await sync_to_async(UserFactory)(username=f"telegram-{identity.external_id}")
    await Identity.objects.filter(pk=identity.pk).aupdate(user=user)
    await IntegrationAccount.objects.acreate(
        user=user,
        provider="github",
        uid="583231",
        extra_data={"access_token": SECRET_TOKEN, "refresh_token": SECRET_REFRESH},
        login="@ada",
        scopes="repo read:user",
    )


@pytest.mark.django_db(transaction=True)
async def test_export_sends_everything_kept_about_the_person_as_one_json_file(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    transport = FileRecordingTransport()
    await processor.process_message(message("remember that I like tea"), transport)
    await processor.process_message(message("/timezone Europe/Berlin"), transport)
    await processor.process_message(message("/remind in 2h drink some tea"), transport)
    ada = await Identity.objects.aget(external_id="7")
    await connect_github(ada)

    result = await processor.process_message(message("/export"), transport)

    assert result.status == "answered"
    assert result.reply.startswith("Here is everything I keep about you, as a JSON file:")
    assert "1 reminder, 1 connected account (without their tokens)" in result.reply
    [document] = transport.files
    assert (document.kind, document.mime_type) == ("document", "application/json")
    assert document.file_name == f"aisystem-data-{timezone.localdate().isoformat()}.json"
    assert SECRET_TOKEN.encode() not in document.data
    assert SECRET_REFRESH.encode() not in document.data
    data = json.loads(document.data)
    assert data["format"] == EXPORT_FORMAT
    assert data["identity"] | {"first_seen_at": None, "last_seen_at": None} == {
        "transport": "telegram",
        "external_id": "7",
        "username": "ada",
        "display_name": "Ada Lovelace",
        "role": "guest",
        "first_seen_at": None,
        "last_seen_at": None,
        "time_zone": "Europe/Berlin",
    }
    texts = [(m["direction"], m["text"]) for m in data["messages"]]
    assert texts[0] == ("in", "remember that I like tea")
    assert texts[1][0] == "out" and "remember that I like tea" in texts[1][1]  # the echo
    assert ("in", "/export") in texts
    assert all(m["created_at"] for m in data["messages"])
    stamps = [m["created_at"] for m in data["messages"]]
    assert stamps == sorted(stamps)
    assert data["messages_total"] == data["messages_included"] == len(data["messages"])
    assert [r["text"] for r in data["reminders"]] == ["drink some tea"]
    assert data["connected_accounts"] == [
        {
            "provider": "github",
            "login": "@ada",
            "uid": "583231",
            "scopes": ["repo", "read:user"],
            "status": "connected",
            "connected_at": data["connected_accounts"][0]["connected_at"],
            "last_used_at": None,
        }
    ]
    default = await Workspace.objects.aget(is_default=True)
    assert [(u["messages"], u["workspace"]) for u in data["usage"]] == [(3, default.slug)]
    assert [c["type"] for c in data["chats"]] == ["private"]
    assert len(data["conversations"]) == 1


@pytest.mark.django_db(transaction=True)
async def test_export_in_a_group_is_refused_and_sends_no_file(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    transport = FileRecordingTransport()
    in_group = message("/export@helperbot", chat_id="-100", chat_type=ChatType.SUPERGROUP)

    result = await processor.process_message(in_group, transport)

    assert result.reply == EXPORT_PRIVATE_ONLY
    assert transport.files == []


@pytest.mark.django_db(transaction=True)
async def test_a_transport_that_refuses_the_file_leaves_the_person_told_so(
    processor: UnifiedMessageProcessor, allow_everyone: Any
) -> None:
    transport = FileRecordingTransport(fail_files=True)

    result = await processor.process_message(message("/export"), transport)

    assert result.status == "answered"
    assert transport.texts[-1] == DOCUMENT_FAILED
    assert transport.texts[0].startswith("Here is everything I keep about you")


@pytest.mark.django_db
def test_a_history_too_large_for_the_file_keeps_its_newest_messages() -> None:
    ada = IdentityFactory()
    chat = ChatFactory()
    start = timezone.now() - timedelta(days=1)
    for number in range(60):
        MessageFactory(
            identity=ada, chat=chat, text=f"message {number:02d} " + "x" * 200,
            created_at=start + timedelta(minutes=number),
        )  # fmt: skip

    export = identity_export(identity_id=ada.pk, max_bytes=8_000)

    data = json.loads(export.data)
    assert export.truncated and 0 < export.messages_included < 60
    assert len(export.data) <= 8_000
    assert (data["messages_total"], data["messages_included"]) == (60, export.messages_included)
    kept = [m["text"][:10] for m in data["messages"]]
    assert kept[-1] == "message 59" and kept == sorted(kept)


@pytest.mark.django_db
def test_the_export_holds_the_person_s_messages_and_no_one_else_s() -> None:
    ada, bob = IdentityFactory(), IdentityFactory()
    group = ChatFactory(chat_type=ChatType.SUPERGROUP)
    MessageFactory(identity=ada, chat=group, text="ada's words")
    MessageFactory(identity=bob, chat=group, text="bob's words")
    Reminder.objects.create(identity=bob, chat=group, text="bob's reminder", due_at=timezone.now())

    data = json.loads(identity_export(identity_id=ada.pk).data)

    assert [m["text"] for m in data["messages"]] == ["ada's words"]
    assert data["reminders"] == []
    assert b"bob" not in json.dumps(data["messages"]).encode()


# --- REST -------------------------------------------------------------------------------------


@pytest.fixture
def claude_points_at_the_fake(fake_claude: FakeClaude) -> Iterator[None]:
    with override_settings(ANTHROPIC_BASE_URL=fake_claude.base_url, ANTHROPIC_API_KEY=PRIMARY_KEY):
        yield


@pytest.mark.usefixtures("claude_points_at_the_fake")
@pytest.mark.django_db(transaction=True)
async def test_on_rest_export_answers_with_the_address_that_serves_the_file(
    settings: Any,
) -> None:
    settings.AISYSTEM_PUBLIC_URL = "http://testserver/"
    token, plaintext = await sync_to_async(api_token_create)(name="integration")
    _, other = await sync_to_async(api_token_create)(name="someone else")
    client, bearer = AsyncClient(), {"Authorization": f"Bearer {plaintext}"}
    for text in ("hello from the API", "/export"):
        body = {"chat_id": "c1", "user_id": "u/1", "text": text}
        response = await client.post(
            "/api/v1/messages", body, content_type="application/json", headers=bearer
        )
        assert response.status_code == 200, response.content

    reply = response.json()["reply"]
    address = "http://testserver/api/v1/users/u/1/export"
    served = await client.get(address, headers=bearer)
    strangers = await client.get(address, headers={"Authorization": f"Bearer {other}"})
    nobody = await client.get("/api/v1/users/nobody/export", headers=bearer)
    anonymous = await client.get(address)

    assert reply == f"Your data is a JSON file: fetch it with this API token from `GET {address}`."
    assert served.status_code == 200
    assert served["Content-Type"] == "application/json; charset=utf-8"
    assert served["Content-Disposition"].startswith('attachment; filename="aisystem-data-')
    data = json.loads(served.content)
    assert data["identity"]["external_id"] == f"{token.pk}:u/1"
    assert ("in", "hello from the API") in [(m["direction"], m["text"]) for m in data["messages"]]
    assert (strangers.status_code, nobody.status_code, anonymous.status_code) == (404, 404, 401)
