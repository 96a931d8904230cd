"""The REST API served by real daphne processes, with real HTTP clients.

* A client that disconnects (or gives up waiting) mid-answer does not stop the answer: it is
  finished and stored, on the JSON path as on the streaming one.
* Two web processes receiving one ``Idempotency-Key`` at the same moment answer it once.

The fake Messages API runs in this process on loopback; daphne shares the test database.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aisystem.models import Direction, Message, MessageStatus
from pipeline.fakeclaude import FakeClaude, Scenario
from tests.browser import background, daphne_args, log_tail, process_env
from tests.conftest import PRIMARY_KEY
from tests.helpers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
BODY = {"chat_id": "live", "user_id": "u1", "text": "Take your time"}


@contextlib.contextmanager
def web(fake: FakeClaude, log: Path) -> Iterator[int]:
    """A daphne process serving the app on a free loopback port; yields the port."""
    port = free_port()
    env = {**process_env(0), "ANTHROPIC_BASE_URL": fake.base_url, "ANTHROPIC_API_KEY": PRIMARY_KEY}
    with background(daphne_args(port), env, log, port):
        yield port


def request_bytes(port: int, token: str, body: dict[str, Any], **headers: str) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        "POST /api/v1/messages HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {token}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def post(port: int, token: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/messages",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_inbound(*, status: str | None = None, not_status: str | None = None) -> Message:
    """The test chat's inbound message once it has (or no longer has) a status; a hang
    guard of 60 s, not a timing."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = Message.objects.filter(direction=Direction.INBOUND).first()
        if (
            message is not None
            and (status is None or message.status == status)
            and (not_status is None or message.status != not_status)
        ):
            return message
        time.sleep(0.1)
    raise AssertionError(f"no inbound message with status {status or f'not {not_status}'}")


@pytest.fixture
def token() -> str:
    from aisystem.services.tokens import api_token_create

    return api_token_create(name="live")[1]


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_a_client_that_disconnects_mid_answer_still_gets_it_stored(
    fake_claude: FakeClaude, token: str, tmp_path: Path, accept: str
) -> None:
    fake_claude.set_scenario(
        Scenario(
            name="slow", reply_text="finished anyway", time_to_first_token=2, tokens_per_second=4
        )
    )
    log = tmp_path / "daphne.log"
    with web(fake_claude, log) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(request_bytes(port, token, BODY, Accept=accept))
            wait_for_inbound(status=MessageStatus.PROCESSING)
            # The client gives up and goes away while Claude is still thinking.
        message = wait_for_inbound(not_status=MessageStatus.PROCESSING)
        stored = _get(port, token, message.pk)

    assert message.status == MessageStatus.ANSWERED, log_tail(log)
    reply = Message.objects.get(reply_to=message, direction=Direction.OUTBOUND)
    assert reply.text == "finished anyway"
    assert stored["status"] == "answered" and stored["reply"] == "finished anyway"
    assert len(fake_claude.requests) == 1


def test_a_client_that_times_out_can_fetch_the_answer_with_its_key(
    fake_claude: FakeClaude, token: str, tmp_path: Path
) -> None:
    fake_claude.set_scenario(Scenario(name="slow", reply_text="here it is", time_to_first_token=2))
    key = {"Idempotency-Key": "timeout-1"}
    with web(fake_claude, tmp_path / "daphne.log") as port:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(request_bytes(port, token, BODY, **key))
            wait_for_inbound(status=MessageStatus.PROCESSING)
            client.settimeout(0.2)
            with pytest.raises(TimeoutError):
                client.recv(1024)  # nothing comes within the client's timeout: it gives up
        wait_for_inbound(not_status=MessageStatus.PROCESSING)
        status, body = post(port, token, BODY, **key)

    assert status == 200
    assert body["reply"] == "here it is"
    assert len(fake_claude.requests) == 1


def test_two_web_processes_answer_one_key_once(
    fake_claude: FakeClaude, token: str, tmp_path: Path
) -> None:
    fake_claude.set_scenario(Scenario(name="slow", reply_text="once", time_to_first_token=2))
    key = {"Idempotency-Key": "race-1"}
    with (
        web(fake_claude, tmp_path / "a.log") as first,
        web(fake_claude, tmp_path / "b.log") as second,
    ):
        start = threading.Barrier(4)
        results: list[tuple[int, Any]] = []

        def send(port: int) -> None:
            start.wait()
            results.append(post(port, token, BODY, **key))

        threads = [threading.Thread(target=send, args=(port,)) for port in (first, second) * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        wait_for_inbound(not_status=MessageStatus.PROCESSING)
        later = [post(port, token, BODY, **key) for port in (first, second)]

    codes = sorted(code for code, _ in results)
    assert codes == [200, 409, 409, 409], results
    answer = next(body for code, body in results if code == 200)
    assert answer["reply"] == "once"
    assert later == [(200, answer), (200, answer)]
    assert len(fake_claude.requests) == 1
    assert Message.objects.filter(direction=Direction.INBOUND).count() == 1


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain"]
)
def test_daphne_lets_the_api_answer_a_mislabelled_body_in_json(
    fake_claude: FakeClaude, token: str, tmp_path: Path, content_type: str
) -> None:
    """Twisted, under daphne, used to answer a body it could not parse as multipart with a
    bare 400 before the API saw it."""
    payload = json.dumps(BODY).encode()
    head = (
        f"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    with (
        web(fake_claude, tmp_path / "daphne.log") as port,
        socket.create_connection(("127.0.0.1", port), timeout=30) as client,
    ):
        client.sendall(head.encode() + payload)
        raw = b""
        while chunk := client.recv(65536):
            raw += chunk

    status_line, _, rest = raw.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    assert status_line.split()[1] == b"415", raw
    assert "application/json" in json.loads(body)["detail"]
    assert fake_claude.requests == []


def _get(port: int, token: str, message_id: int) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/messages/{message_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())
