"""The endpoint under hostile input, over real HTTP to uvicorn, on SQLite and PostgreSQL: named
attacks (XML bombs, external entities, deep nesting, huge numbers, invalid UTF-8, header
injection, duplicate parameters, oversized bodies) and random requests in all four formats.
Property: never a 5xx; every refusal carries the app's `message`."""

from __future__ import annotations

import json
import os
import random
import socket
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import parse_qs
from xml.etree import ElementTree

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import Lab, serve
from tests.security.fuzzcases import PASSWORD, USER, Case, corpus, random_case
from tests.security.test_fuzz_openapi import FUZZ_ENV
from webcallback.web.app import create_app

EXAMPLES = int(os.environ.get("WEBCALLBACK_FUZZ_EXAMPLES", "2000"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz-endpoint")
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'fuzz.db'}"
    else:
        db_url = request.getfixturevalue("pg_server").create_database()
    lab = Lab(db_url, tmp, **FUZZ_ENV)
    enc, kid = lab.services.cipher.encrypt(USER, PASSWORD)
    lab.services.accounts.add(
        USER, password_enc=enc, key_id=kid, balance=Decimal(1000), callback_number="+12025550199"
    )
    with serve(create_app(lab.services)) as url:
        yield url
        assert httpx.get(url + "/healthz").status_code == 200  # still serving after it all
    lab.close()


@pytest.fixture(scope="module")
def http(fuzz_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server, timeout=30) as client:
        yield client


def send(http: httpx.Client, case: Case) -> httpx.Response:
    return http.request(case.method, case.target, headers=case.headers, content=case.body)


def check(response: httpx.Response, case: Case) -> None:
    assert response.status_code < 500, f"{case.name}: {response.status_code} {response.text[:300]}"
    if response.status_code < 400 or not case.target.startswith("/webcallback"):
        return
    ctype = response.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        message = json.loads(response.text)["message"]
    elif ctype.startswith("application/xml"):
        message = ElementTree.fromstring(response.content).findtext("message")
    elif ctype.startswith("application/x-www-form-urlencoded"):
        message = parse_qs(response.text).get("message", [""])[0]
    else:  # not from our app: uvicorn refusing a malformed request before it reaches us
        assert response.status_code == 400, (case, response.status_code, ctype, response.text[:200])
        return
    assert message, (case, response.status_code, ctype, response.text[:200])
    assert len(message) < 100, message  # the app shows the message; keep it whole


@pytest.mark.parametrize("case", corpus(), ids=lambda c: c.name)
def test_named_attacks(http: httpx.Client, case: Case) -> None:
    check(send(http, case), case)


@pytest.mark.long
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(rng=st.randoms(use_true_random=False))
def test_random_requests_in_every_format(http: httpx.Client, rng: random.Random) -> None:
    case = random_case(rng)
    check(send(http, case), case)


RAW_REQUESTS = [
    b"GET /webcallback?to=1 HTTP/1.1\r\nHost: x\r\nX-A: a\rInjected: 1\r\n\r\n",
    b"GET /webcallback?to=1 HTTP/1.1\r\nHost: x\r\nX-A: a\nInjected: 1\r\n\r\n",
    b"GET /webcallback?to=1 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded: 1\r\n\r\n",
    b"GET /webcallback?to=1\r\n\r\n HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /webcallback?to=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /webcallback HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nto=12",
    b"POST /webcallback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    b"0\r\n\r\n",
    b"POST /webcallback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"4000\r\n" + b"a" * 0x4000 + b"\r\n" for _ in range(3))
    + b"0\r\n\r\n",
    b'GET /webcallback HTTP/1.1\r\nHost: x\r\nAuthorization: Digest username="\xff"\r\n\r\n',
    b"POST /webcallback HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nto=1",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,  # a TLS hello to the plain port
]


@pytest.mark.parametrize("raw", RAW_REQUESTS, ids=range(len(RAW_REQUESTS)))
def test_raw_protocol_abuse(fuzz_server: str, raw: bytes) -> None:
    host, port = fuzz_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        reply = b""
        try:
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if reply:  # the server may also just close the connection
        status = int(reply.split(b" ", 2)[1])
        assert status < 500, reply[:300]
