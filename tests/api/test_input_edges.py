"""Input a client gets wrong: the body's type, invisible text, look-alike ids.

Each answer is a 4xx with a JSON ``detail``, and nothing is recorded or sent to Claude.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient

from aisystem.models import ApiToken, Message
from pipeline.fakeclaude import FakeClaude
from tests.api.conftest import URL, auth, post

pytestmark = pytest.mark.django_db(transaction=True)
GOOD = {"chat_id": "c", "user_id": "u", "text": "hi"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/jsonx",
        "",  # no content type at all
    ],
)
async def test_a_json_body_sent_as_another_type_is_415(
    token: tuple[ApiToken, str], fake_claude: FakeClaude, content_type: str
) -> None:
    response = await AsyncClient().generic(
        "POST", URL, json.dumps(GOOD), content_type=content_type, headers=auth(token[1])
    )

    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert await Message.objects.acount() == 0
    assert fake_claude.requests == []


async def test_a_body_of_unnamed_bytes_is_415(token: tuple[ApiToken, str]) -> None:
    response = await AsyncClient().generic("POST", URL, json.dumps(GOOD), headers=auth(token[1]))

    assert response.status_code == 415
    assert response.json()["detail"]


async def test_a_multipart_form_is_a_json_415(token: tuple[ApiToken, str]) -> None:
    response = await AsyncClient().post(URL, data=GOOD, headers=auth(token[1]))

    assert response.status_code == 415
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/x+json"]
)
async def test_json_by_any_of_its_names_is_accepted(
    token: tuple[ApiToken, str], content_type: str
) -> None:
    response = await post(GOOD, token[1], content_type=content_type)

    assert response.status_code == 200
    assert response.json()["status"] == "answered"


@pytest.mark.parametrize(
    "text",
    ["\u200b", "\ufeff", "\u200b\u200c\u200d\u2060", " \ufeff\n\u200b\t", "\u202e", "\u3164"],
    ids=["zwsp", "bom", "joiners", "mixed", "bidi", "hangul-filler"],
)
async def test_invisible_only_text_is_blank(
    token: tuple[ApiToken, str], fake_claude: FakeClaude, text: str
) -> None:
    response = await post({**GOOD, "text": text}, token[1])

    assert response.status_code == 422
    assert "blank" in json.dumps(response.json())
    assert fake_claude.requests == []


@pytest.mark.parametrize(
    "text", ["\ufeffhello", "a\u200bb", "👩🏽\u200d💻", "שלום \u202bworld\u202c"]
)
async def test_visible_text_with_invisible_characters_is_answered(
    token: tuple[ApiToken, str], text: str
) -> None:
    response = await post({**GOOD, "text": text}, token[1])

    assert response.status_code == 200
    assert response.json()["status"] == "answered"


@pytest.mark.parametrize("field", ["chat_id", "user_id"])
@pytest.mark.parametrize(
    "char",
    ["\u202e", "\u202a", "\u2066", "\u200f", "\u061c", "\u200b", "\ufeff", "\u00ad", "\U000e0041"],
    ids=["RLO", "LRE", "LRI", "RLM", "ALM", "ZWSP", "BOM", "soft-hyphen", "tag"],
)
async def test_format_characters_in_ids_are_422(
    token: tuple[ApiToken, str], field: str, char: str
) -> None:
    response = await post({**GOOD, field: f"admin{char}txt.exe"}, token[1])

    assert response.status_code == 422
    body: dict[str, Any] = response.json()
    assert field in json.dumps(body)
    assert f"U+{ord(char):04X}" in json.dumps(body)
    assert await Message.objects.acount() == 0


async def test_a_bad_idempotency_key_is_422(token: tuple[ApiToken, str]) -> None:
    too_long = await post(GOOD, token[1], **{"Idempotency-Key": "k" * 256})
    spaced = await post(GOOD, token[1], **{"Idempotency-Key": "two words"})

    assert too_long.status_code == 422
    assert spaced.status_code == 422
    assert "Idempotency-Key" in json.dumps(spaced.json())
    assert await Message.objects.acount() == 0
