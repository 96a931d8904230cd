"""The fake Messages API, exercised by the real anthropic SDK (and raw HTTP where the SDK hides
the wire). What the SDK does with broken streams is asserted as it really behaves, because
pipeline/claude/client.py has to handle exactly that."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anthropic  # noqa: TID251 - tests drive the real SDK against the fake
import httpx2
import pytest
from anthropic.types import (  # noqa: TID251
    MessageParam,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextBlock,
    ToolUseBlock,
)

from pipeline.fakeclaude import (
    DROP_CONNECTION,
    NO_MESSAGE_STOP,
    OVERLOADED,
    RATE_LIMITED,
    SERVER_ERROR,
    STREAM_ERROR,
    TRUNCATED_STREAM,
    UNAUTHORIZED,
    FakeClaude,
    Scenario,
    ToolUseReply,
)
from tests.pipeline.conftest import PRIMARY_KEY, SECONDARY_KEY

MODEL = "claude-sonnet-4-6"
HELLO: list[MessageParam] = [{"role": "user", "content": "hello there, fake Claude"}]
ECHO_OF_HELLO = "You said: hello there, fake Claude"
REPO = Path(__file__).resolve().parents[2]
# What a body cut short mid-stream raises. Before anthropic 2.17 the SDK wrapped only the
# request's own errors, and a cut body surfaced from the HTTP library as it was; 2.17 wraps it
# in APIConnectionError. pipeline/claude/client.py retries both.
BODY_CUT_SHORT = (anthropic.APIConnectionError, httpx2.RemoteProtocolError)


def create(client: anthropic.Anthropic, **overrides: Any) -> anthropic.types.Message:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 256, "messages": HELLO}
    message: anthropic.types.Message = client.messages.create(**(params | overrides))
    return message


def post_raw(
    fake: FakeClaude, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST /v1/messages with nothing but http.client, to see the wire the SDK hides."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        base = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
        connection.request("POST", "/v1/messages", body=body, headers=base | (headers or {}))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def sse_event_names(payload: bytes) -> list[str]:
    return [
        line.removeprefix("event: ")
        for line in payload.decode().splitlines()
        if line.startswith("event: ")
    ]


# -- answers ----------------------------------------------------------------------------------


def test_it_answers_with_an_echo_and_usage(claude: anthropic.Anthropic) -> None:
    message = create(claude)

    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == ECHO_OF_HELLO
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens >= 1
    assert message.usage.output_tokens >= 1
    assert (message._request_id or "").startswith("req_")


def test_streaming_yields_text_deltas_in_order_and_a_final_message(
    claude: anthropic.Anthropic,
) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(deltas) > 3
    assert "".join(deltas) == ECHO_OF_HELLO
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == create(claude).usage.output_tokens
    assert final.usage.input_tokens >= 1


def test_raw_stream_events_arrive_in_the_real_order(claude: anthropic.Anthropic) -> None:
    events = list(claude.messages.create(model=MODEL, max_tokens=256, messages=HELLO, stream=True))

    kinds = [event.type for event in events]
    deltas = len(kinds) - 5
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert isinstance(start, RawMessageStartEvent)
    assert start.message.content == []
    assert isinstance(delta, RawMessageDeltaEvent)
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens >= deltas


def test_the_wire_has_a_ping_after_the_first_block_start(fake_claude: FakeClaude) -> None:
    body = {"model": MODEL, "max_tokens": 64, "stream": True, "messages": HELLO}
    status, headers, payload = post_raw(
        fake_claude, json.dumps(body).encode(), {"x-api-key": PRIMARY_KEY}
    )

    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["request-id"].startswith("req_")
    names = sse_event_names(payload)
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_a_tool_use_reply_is_parsed_as_a_tool_use_block(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    tool = ToolUseReply(name="lookup_order", input={"order": 42, "tags": ["a", "b"]})
    fake_claude.set_scenario(Scenario(name="tool", tool_use=tool))

    message = create(claude)
    with claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        streamed = stream.get_final_message()

    for reply in (message, streamed):
        assert reply.stop_reason == "tool_use"
        block = reply.content[-1]
        assert isinstance(block, ToolUseBlock)
        assert block.name == "lookup_order"
        assert block.input == {"order": 42, "tags": ["a", "b"]}
        assert block.id.startswith("toolu_")


def test_max_tokens_cuts_the_reply(claude: anthropic.Anthropic) -> None:
    message = create(claude, max_tokens=2)

    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens <= 2


def test_count_tokens_estimates_the_input(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model=MODEL, messages=HELLO)

    assert counted.input_tokens == create(claude).usage.input_tokens


# -- errors as HTTP statuses --------------------------------------------------------------------


def test_a_429_raises_rate_limit_error_with_retry_after(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(RATE_LIMITED)

    with pytest.raises(anthropic.RateLimitError) as caught:
        create(claude)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.type == "rate_limit_error"
    assert (caught.value.request_id or "").startswith("req_")


def test_a_529_raises_an_overloaded_internal_server_error(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(OVERLOADED)

    with pytest.raises(anthropic.InternalServerError) as caught:
        create(claude)

    assert caught.value.status_code == 529
    assert caught.value.type == "overloaded_error"


def test_a_500_raises_internal_server_error(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(SERVER_ERROR)

    with pytest.raises(anthropic.InternalServerError) as caught:
        create(claude)

    assert caught.value.status_code == 500
    assert caught.value.type == "api_error"


def test_an_unknown_key_raises_authentication_error(fake_claude: FakeClaude) -> None:
    client = anthropic.Anthropic(
        api_key="sk-ant-nope", base_url=fake_claude.base_url, max_retries=0
    )

    with pytest.raises(anthropic.AuthenticationError) as caught:
        create(client)

    assert caught.value.status_code == 401
    assert caught.value.type == "authentication_error"


def test_the_unauthorized_scenario_refuses_even_a_known_key(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(UNAUTHORIZED)

    with pytest.raises(anthropic.AuthenticationError):
        create(claude)


def test_a_missing_key_gets_a_401_error_body(fake_claude: FakeClaude) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    status, headers, payload = post_raw(fake_claude, json.dumps(body).encode())

    assert status == 401
    assert headers["request-id"].startswith("req_")
    error = json.loads(payload)
    assert error["type"] == "error"
    assert error["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"{not json", "JSON"),
        (b'{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}', "max_tokens"),
        (b'{"model": "m", "max_tokens": 5}', "messages"),
        (b'{"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}', "role"),
    ],
)
def test_a_malformed_body_gets_a_400_invalid_request_error(
    fake_claude: FakeClaude, body: bytes, complaint: str
) -> None:
    status, headers, payload = post_raw(fake_claude, body, {"x-api-key": PRIMARY_KEY})

    assert status == 400
    assert headers["request-id"].startswith("req_")
    error = json.loads(payload)["error"]
    assert error["type"] == "invalid_request_error"
    assert complaint in error["message"]


# -- broken streams: what the SDK really does ---------------------------------------------------


def test_a_mid_stream_error_event_raises_api_status_error_with_status_200(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(STREAM_ERROR)
    received: list[str] = []

    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream,
    ):
        received.extend(stream.text_stream)

    assert received == ["You", " said:"]  # the two deltas before the error event
    # The HTTP status was 200, so the SDK cannot pick a subclass: the error type is in the body.
    assert type(caught.value) is anthropic.APIStatusError
    assert caught.value.status_code == 200
    assert caught.value.type == "overloaded_error"


def test_a_dropped_connection_mid_stream_raises_a_connection_error_after_the_text_so_far(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(DROP_CONNECTION)
    received: list[str] = []

    with (
        pytest.raises(BODY_CUT_SHORT),
        claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream,
    ):
        received.extend(stream.text_stream)

    assert received == ["You", " said:"]


def test_a_connection_dropped_before_any_answer_raises_api_connection_error(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(DROP_CONNECTION)

    with pytest.raises(anthropic.APIConnectionError):
        create(claude)


def test_a_stream_without_message_stop_still_gives_a_final_message(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(NO_MESSAGE_STOP)

    with claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        final = stream.get_final_message()

    # No error: the SDK takes the end of the body as the end of the message.
    assert final.content[0].type == "text"
    assert final.content[0].text == ECHO_OF_HELLO
    assert final.stop_reason == "end_turn"


def test_a_stream_cut_cleanly_gives_a_partial_message_without_stop_reason(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(TRUNCATED_STREAM)

    with claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        final = stream.get_final_message()

    # Also no error: only stop_reason None (and output_tokens still from message_start) tell.
    assert final.content[0].type == "text"
    assert final.content[0].text == "You said:"
    assert final.stop_reason is None
    assert final.usage.output_tokens == 1


# -- credentials --------------------------------------------------------------------------------


def test_the_sdk_sends_its_api_key_as_a_bearer_token(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    create(claude)

    assert fake_claude.last_request.api_key == PRIMARY_KEY
    assert fake_claude.last_request.auth_scheme == "bearer"
    assert fake_claude.last_request.headers["authorization"] == "[redacted]"


def test_an_auth_token_client_is_accepted(fake_claude: FakeClaude) -> None:
    client = anthropic.Anthropic(
        auth_token=SECONDARY_KEY, base_url=fake_claude.base_url, max_retries=0
    )

    assert create(client).content[0].type == "text"
    assert fake_claude.last_request.api_key == SECONDARY_KEY


def test_the_x_api_key_header_is_accepted(fake_claude: FakeClaude) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": HELLO}
    status, _, payload = post_raw(
        fake_claude, json.dumps(body).encode(), {"x-api-key": SECONDARY_KEY}
    )

    assert status == 200
    assert json.loads(payload)["content"][0]["text"] == ECHO_OF_HELLO
    assert fake_claude.last_request.auth_scheme == "x-api-key"
    assert fake_claude.last_request.headers["x-api-key"] == "[redacted]"


# -- choosing scenarios -------------------------------------------------------------------------


def test_a_scenario_for_the_next_request_only_then_the_normal_answer(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(RATE_LIMITED, times=1)

    with pytest.raises(anthropic.RateLimitError):
        create(claude)
    assert create(claude).content[0].type == "text"


def test_scenarios_for_the_next_n_requests_stack_on_top_of_older_ones(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(Scenario(name="fixed", reply_text="Fixed answer."))
    fake_claude.set_scenario(OVERLOADED, times=2)

    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(create(claude).content[0].text)  # type: ignore[union-attr]
        except anthropic.InternalServerError as error:
            outcomes.append(error.status_code)
    assert outcomes == [529, 529, "Fixed answer."]


def test_a_scenario_can_apply_to_one_api_key_only(fake_claude: FakeClaude) -> None:
    fake_claude.set_scenario(OVERLOADED, api_key=PRIMARY_KEY)
    base = fake_claude.base_url
    primary = anthropic.Anthropic(api_key=PRIMARY_KEY, base_url=base, max_retries=0)
    secondary = anthropic.Anthropic(api_key=SECONDARY_KEY, base_url=base, max_retries=0)

    with pytest.raises(anthropic.InternalServerError):
        create(primary)
    assert create(secondary).content[0].type == "text"


def test_the_scenario_header_picks_a_preset_for_one_request(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        create(claude, extra_headers={"x-fake-scenario": "rate_limited"})

    assert create(claude).stop_reason == "end_turn"


def test_the_scenario_header_picks_a_defined_scenario(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.define_scenario("terse", Scenario(name="terse", reply_text="Yes."))

    message = create(claude, extra_headers={"x-fake-scenario": "terse"})

    assert message.content[0].text == "Yes."  # type: ignore[union-attr]
    assert fake_claude.last_request.scenario == "terse"


def test_an_unknown_scenario_header_is_a_bad_request(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        create(claude, extra_headers={"x-fake-scenario": "no-such-thing"})


def test_the_fake_records_what_the_request_carried(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}
    content: Any = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": image},
        {"type": "document", "source": pdf},
    ]

    message = create(claude, messages=[{"role": "user", "content": content}], system="Be brief.")

    recorded = fake_claude.last_request
    assert recorded.block_types == ["text", "image", "document"]
    assert recorded.body is not None
    assert recorded.body["system"] == "Be brief."
    assert recorded.status == 200
    assert recorded.request_id == message._request_id
    assert message.content[0].text == (  # type: ignore[union-attr]
        "You said: What is in these? [attached: 1 image, 1 document]"
    )


# -- timing and concurrency ---------------------------------------------------------------------


def test_time_to_first_token_is_honoured(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(Scenario(name="thinking", time_to_first_token=0.5))

    started = time.monotonic()
    with claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        first = next(iter(stream.text_stream))
        waited = time.monotonic() - started
        stream.until_done()

    assert first == "You"
    assert waited >= 0.4


def test_tokens_per_second_paces_the_stream(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.set_scenario(Scenario(name="paced", tokens_per_second=40.0))

    started = time.monotonic()
    with claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        final = stream.get_final_message()
    elapsed = time.monotonic() - started

    assert elapsed >= 0.8 * final.usage.output_tokens / 40.0


def test_a_slow_stream_does_not_hold_up_other_requests(
    fake_claude: FakeClaude, claude: anthropic.Anthropic
) -> None:
    fake_claude.define_scenario("slow", Scenario(name="slow", time_to_first_token=1.5))
    first_token = threading.Event()

    def stream_slowly() -> None:
        headers = {"x-fake-scenario": "slow"}
        with claude.messages.stream(
            model=MODEL, max_tokens=64, messages=HELLO, extra_headers=headers
        ) as stream:
            next(iter(stream.text_stream))
            first_token.set()
            stream.until_done()

    slow = threading.Thread(target=stream_slowly)
    slow.start()
    try:
        assert create(claude).stop_reason == "end_turn"
        assert not first_token.is_set()  # the quick answer came while the slow one still waited
    finally:
        slow.join(timeout=30)


def test_stopping_the_fake_ends_a_waiting_stream() -> None:
    fake = FakeClaude(default=Scenario(name="stuck", time_to_first_token=120.0)).start()
    client = anthropic.Anthropic(api_key="any", base_url=fake.base_url, max_retries=0)
    outcome: list[BaseException | None] = []

    def stream() -> None:
        try:
            with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as s:
                s.until_done()
            outcome.append(None)
        except Exception as error:
            outcome.append(error)

    reader = threading.Thread(target=stream)
    reader.start()
    while not fake.requests:
        time.sleep(0.01)
    stopper = threading.Thread(target=fake.stop)
    stopper.start()
    stopper.join(timeout=30)
    reader.join(timeout=30)

    assert not stopper.is_alive()
    assert not reader.is_alive()
    assert isinstance(outcome[0], BODY_CUT_SHORT)


# -- the async client ---------------------------------------------------------------------------


async def test_the_async_client_streams_the_same_answer(
    async_claude: anthropic.AsyncAnthropic,
) -> None:
    async with async_claude.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        deltas = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert "".join(deltas) == ECHO_OF_HELLO
    assert final.stop_reason == "end_turn"


async def test_the_async_client_raises_on_a_mid_stream_error(
    fake_claude: FakeClaude, async_claude: anthropic.AsyncAnthropic
) -> None:
    fake_claude.set_scenario(STREAM_ERROR)

    with pytest.raises(anthropic.APIStatusError) as caught:
        async with async_claude.messages.stream(
            model=MODEL, max_tokens=256, messages=HELLO
        ) as stream:
            await stream.until_done()

    assert caught.value.type == "overloaded_error"


async def test_the_async_client_sees_a_dropped_connection_as_a_connection_error(
    fake_claude: FakeClaude, async_claude: anthropic.AsyncAnthropic
) -> None:
    fake_claude.set_scenario(DROP_CONNECTION)

    with pytest.raises(BODY_CUT_SHORT):
        async with async_claude.messages.stream(
            model=MODEL, max_tokens=256, messages=HELLO
        ) as stream:
            await stream.until_done()


# -- the dev command ----------------------------------------------------------------------------


def test_the_command_serves_on_a_free_port_and_exits_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fakeclaude", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        base_url = first_line.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert not base_url.endswith(":0")

        client = anthropic.Anthropic(api_key="any-key", base_url=base_url, max_retries=0)
        assert create(client).content[0].text == ECHO_OF_HELLO  # type: ignore[union-attr]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
