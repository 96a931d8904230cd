"""The stored message kinds and the pipeline's content kinds are one list.

The core cannot import the pipeline, so ``MessageKind`` keeps its own copy of
``pipeline.types.CONTENT_KINDS``; these tests keep the two the same.
"""

from __future__ import annotations

from typing import get_args

import pytest

from aisystem.models import Message, MessageKind
from pipeline.type_router import classify
from pipeline.types import (
    CONTENT_KINDS,
    Attachment,
    AttachmentKind,
    Contact,
    InboundMessage,
    Location,
    Poll,
)
from tests.pipeline.builders import message

# One message for every way the router tells content apart.
EVERY_SHAPE = [
    *(message(text="", attachments=(Attachment(kind=kind),)) for kind in get_args(AttachmentKind)),
    message(text="", location=Location(52.5, 13.4)),
    message(text="", contact=Contact("+4930")),
    message(text="", poll=Poll("Lunch?", ("Pizza", "Soup"))),
    message(text="/help"),
    message(text="hello"),
    message(text=""),
    message(text="/help", is_forwarded=True),
    message(text="hello", is_edited=True),
]


def test_the_stored_kinds_are_the_pipelines_content_kinds_in_the_same_order() -> None:
    assert tuple(MessageKind.values) == CONTENT_KINDS


@pytest.mark.parametrize("msg", EVERY_SHAPE)
def test_every_kind_the_router_gives_can_be_stored(msg: InboundMessage) -> None:
    kind = classify(msg)[1]
    Message._meta.get_field("kind").clean(kind, None)  # raises ValidationError if not


def test_the_router_gives_every_content_kind() -> None:
    assert {classify(msg)[1] for msg in EVERY_SHAPE} == set(CONTENT_KINDS)
