"""The OpenAPI document tells the truth.

* schemathesis generates requests from ``/api/openapi.json`` (valid ones and, for the
  negative phases, invalid ones), sends them to the ASGI application in this process (the
  pipeline answering through the fake Messages API on loopback) and checks every response:
  no 5xx, a documented status, content type, headers and body. A fixed seed and a small
  budget keep the run repeatable and short.
* The character patterns the schema states accept exactly what the API's checks accept.
* Every status the API answers with is documented.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import schemathesis
from django.core.asgi import get_asgi_application
from django.test import AsyncClient
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from aisystem.api.messages import IDEMPOTENCY_KEY_PATTERN
from aisystem.api.schemas import CLIENT_MESSAGE_ID_PATTERN
from aisystem.api.text_rules import id_pattern, id_problem, text_pattern, text_problem
from aisystem.models import ApiToken
from tests.api.conftest import auth

pytestmark = pytest.mark.django_db(transaction=True)
SEED = 20261204


# Loaded when the module is collected (it needs no database): schemathesis 4.32's lazy
# ``from_fixture`` loader does not run under pytest 9.
schema = schemathesis.openapi.from_asgi(
    "/api/openapi.json",
    get_asgi_application(),
    headers={"Host": "localhost"},
    config=SchemathesisConfig.from_dict(
        {
            "checks": {
                # Text over the configured length (the schema's maxLength) is a 413, as the
                # API has always answered it, rather than a 422.
                "negative_data_rejection": {
                    "expected-statuses": [
                        400,
                        401,
                        403,
                        404,
                        405,
                        406,
                        409,
                        413,
                        415,
                        422,
                        428,
                        429,
                        "5xx",
                    ]
                }
            }
        }
    ),
)


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_response_keeps_to_the_schema(case: Any, token: tuple[ApiToken, str]) -> None:
    _fresh_retry_ids(case)
    case.call_and_validate(headers=auth(token[1]))


def _fresh_retry_ids(case: Any) -> None:
    """A new ``Idempotency-Key`` and ``message_id`` for each case that has one: reused for
    another message they are a 422 by design (``test_idempotency``), while schemathesis
    holds every schema-valid request to be accepted, and draws the same few values often.
    Valid ones only, so that a negative case stays as invalid as schemathesis made it."""
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    message_id = case.body.get("message_id") if isinstance(case.body, dict) else None
    if isinstance(message_id, str) and re.fullmatch(CLIENT_MESSAGE_ID_PATTERN, message_id):
        case.body["message_id"] = uuid.uuid4().hex


# --- The patterns -------------------------------------------------------------------------

# Characters any rule is about, so that random strings hit them often.
_RULED = st.sampled_from(
    "\x00\x07\t\n\r\x0b\x1f \x7f\x85\xa0\xad\u034f\u061c\u115f\u180e\u200b\u200d\u200e"
    "\u2028\u202e\u2060\u2066\u3000\u3164\ufe0f\ufeff\U000e0001\U000e0100"
)
_TEXTS = st.text(st.one_of(_RULED, st.characters(exclude_categories=["Cs"])), max_size=12)


@given(_TEXTS)
@settings(max_examples=400, deadline=None)
def test_the_id_pattern_accepts_what_the_id_check_accepts(value: str) -> None:
    matches = re.fullmatch(id_pattern(), value) is not None
    assert matches == (value != "" and id_problem(value) is None)


@given(_TEXTS)
@settings(max_examples=400, deadline=None)
def test_the_text_pattern_accepts_what_the_text_check_accepts(value: str) -> None:
    matches = re.fullmatch(text_pattern(), value) is not None
    assert matches == (value != "" and text_problem(value) is None)


async def test_the_schema_documents_every_status_and_rule() -> None:
    document = (await AsyncClient().get("/api/openapi.json")).json()
    create = document["paths"]["/api/v1/messages"]["post"]
    message_in = document["components"]["schemas"]["MessageIn"]["properties"]

    assert {"200", "400", "401", "409", "413", "415", "422"} <= set(create["responses"])
    assert "Retry-After" in create["responses"]["409"]["headers"]
    assert [p["name"] for p in create["parameters"]] == ["Idempotency-Key"]
    assert message_in["chat_id"]["pattern"] == message_in["user_id"]["pattern"] == id_pattern()
    assert message_in["text"]["pattern"] == text_pattern()
    assert "message_id" in message_in
