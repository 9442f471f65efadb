"""The client over real HTTP, against the STAND-IN provider server of standin.py."""

from __future__ import annotations

import httpx
import pytest

from webcallback.client import (
    WAITING_FOR_CALL,
    CallbackConnectError,
    CallbackResult,
    CallbackTimeout,
    build_request,
    send,
    send_async,
)
from webcallback.client.account import account_from_mapping

from .standin import Recorded, Reply, StandIn, digest_protected

LONG_TEXT = "Sorry. " * 40


def call(standin: StandIn, reply: Reply | None = None, **nodes: str) -> tuple[CallbackResult, Recorded]:
    if reply is not None:
        standin.reply("/wcb", reply)
    nodes = {"wcb_url": standin.url("/wcb?to=%targetNumber%"), **nodes}
    with httpx.Client(trust_env=False) as http:
        result = send(http, build_request(account_from_mapping(nodes), "+15551231234"))
    return result, standin.requests[-1]


def test_success_and_the_exact_request(standin: StandIn) -> None:
    result, seen = call(standin, Reply(200), username="john", wcb_postData="u=%account[username]%")
    assert result.ok and result.message == WAITING_FOR_CALL
    assert (seen.method, seen.target, seen.body) == ("POST", "/wcb?to=%2B15551231234", b"u=john")
    assert [name for name, _ in seen.headers] == [
        "Host",
        "Connection",
        "Cache-Control",
        "Content-Length",
        "Content-Type",
        "User-Agent",
    ]
    assert seen.header("User-Agent") == "CloudSoftphone/1.5.6"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{ "message" : "Not enough credit for this call." }'),
        ("application/xml", b"<error><message>Not enough credit for this call.</message></error>"),
        ("application/x-www-form-urlencoded", b"message=Not+enough+credit+for+this+call."),
    ],
)
def test_message_from_each_format(standin: StandIn, content_type: str, body: bytes) -> None:
    result, _ = call(standin, Reply(403, body, (("Content-Type", content_type),)))
    assert result.message == "Not enough credit for this call."


def test_missing_message_first_100_characters(standin: StandIn) -> None:
    reply = Reply(500, LONG_TEXT.encode(), (("Content-Type", "text/html"),))
    result, _ = call(standin, reply)
    assert result.message == LONG_TEXT[:100] and result.source == "body"


def test_non_utf8_and_empty_bodies(standin: StandIn) -> None:
    result, _ = call(standin, Reply(402, b"\xff\xfeCr\xe9dit", (("Content-Type", "application/json"),)))
    assert result.message == "\ufffd\ufffdCr\ufffddit"
    result, _ = call(standin, Reply(503))
    assert (result.message, result.source) == ("", "empty")


def test_3xx_is_not_followed_by_default(standin: StandIn) -> None:
    standin.reply("/moved", Reply(200))
    result, _ = call(standin, Reply(302, b"moved", (("Location", standin.url("/moved")),)))
    assert not result.ok and result.status == 302
    assert result.location == standin.url("/moved")
    assert [r.path for r in standin.requests] == ["/wcb"]


def test_3xx_followed_when_asked(standin: StandIn) -> None:
    standin.reply("/moved", Reply(200))
    standin.reply("/wcb", Reply(307, b"", (("Location", standin.url("/moved")),)))
    request = build_request(account_from_mapping({"wcb_url": standin.url("/wcb")}), "1")
    with httpx.Client(trust_env=False) as http:
        assert send(http, request, follow_redirects=True).ok


def test_timeout(standin: StandIn) -> None:
    with pytest.raises(CallbackTimeout, match=r"within 0\.3 s"):
        call(standin, Reply(200, delay=1.5), wcb_timeout="0.3")


def test_connection_refused(refused_url: str) -> None:
    request = build_request(account_from_mapping({"wcb_url": refused_url + "?p=%account[password]%"}), "1")
    with httpx.Client(trust_env=False) as http, pytest.raises(CallbackConnectError) as caught:
        send(http, request)
    assert "cannot connect" in str(caught.value) and "?p=" not in str(caught.value)


def test_digest_auth(standin: StandIn) -> None:
    standin.routes["/wcb"] = digest_protected("wcb", "john", "s3cret", lambda _r: Reply(200))
    result, seen = call(standin, wcb_authUsername="john", wcb_authPassword="s3cret")
    assert result.ok
    assert [r.header("Authorization") is None for r in standin.requests] == [True, False]
    assert (seen.header("Authorization") or "").startswith("Digest ")


def test_digest_auth_wrong_password(standin: StandIn) -> None:
    standin.routes["/wcb"] = digest_protected("wcb", "john", "s3cret", lambda _r: Reply(200))
    result, _ = call(standin, wcb_authUsername="john", wcb_authPassword="wrong")
    assert (result.status, result.message) == (401, "authentication required")


def test_no_digest_without_auth_username(standin: StandIn) -> None:
    standin.routes["/wcb"] = digest_protected("wcb", "john", "s3cret", lambda _r: Reply(200))
    result, _ = call(standin, wcb_authPassword="s3cret")
    assert result.status == 401 and len(standin.requests) == 1


async def test_async_twin(standin: StandIn, refused_url: str) -> None:
    standin.reply("/wcb", Reply(403, b'{"message": "no"}', (("Content-Type", "application/json"),)))
    request = build_request(account_from_mapping({"wcb_url": standin.url("/wcb")}), "1")
    async with httpx.AsyncClient(trust_env=False) as http:
        result = await send_async(http, request)
        assert (result.ok, result.message) == (False, "no")
        with pytest.raises(CallbackConnectError):
            await send_async(http, build_request(account_from_mapping({"wcb_url": refused_url}), "1"))
