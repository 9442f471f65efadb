"""Replay protection over real HTTP: the salted-hash nonce and the Digest nonce-count; Digest with
both algorithms, the challenge on a request without credentials, stale nonces."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import httpx
import pytest

from tests.security.conftest import CALLBACK, DEST, PASSWORD, MakeLab
from webcallback.security.digest import client_authorization, parse_challenge

MANY = {"security__limits__concurrent_callbacks_per_user": "0", "security__limits__duplicate_window": "0"}


def challenge_for(http: httpx.Client, uri: str, algorithm: str) -> dict[str, str]:
    first = http.get(uri)
    assert first.status_code == 401
    assert first.json()["error"] == "missing-credentials"
    assert first.json()["message"]
    offered = [parse_challenge(v) for v in first.headers.get_list("www-authenticate")]
    assert {c["algorithm"] for c in offered} == {"SHA-256", "MD5"}
    assert all(c["qop"] == "auth" for c in offered)
    return next(c for c in offered if c["algorithm"] == algorithm)


def uri_for(**extra: str) -> str:
    return "/webcallback?" + urlencode({"targetNumber": DEST, "callbackNumber": CALLBACK, **extra})


def test_salted_hash_nonce_replay_is_refused(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, **MANY)
    nonce = "n0nce-123456"
    digest = hashlib.sha1((nonce + PASSWORD).encode()).hexdigest()
    query = {
        "targetNumber": DEST,
        "callbackNumber": CALLBACK,
        "username": "alice",
        "nonce": nonce,
        "hash": digest,
    }
    with lab.server() as url, httpx.Client(base_url=url) as http:
        assert http.get("/webcallback", params=query).status_code == 200
        replay = http.get("/webcallback", params=query)
        assert replay.status_code == 401
        assert replay.json()["error"] == "nonce-replayed"


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_digest_login_and_nc_replay(make_lab: MakeLab, db_url: str, algorithm: str) -> None:
    lab = make_lab(db_url, **MANY)
    uri = uri_for()
    with lab.server() as url, httpx.Client(base_url=url) as http:
        challenge = challenge_for(http, uri, algorithm)
        auth = client_authorization(
            username="alice", password=PASSWORD, method="GET", uri=uri, challenge=challenge, nc=1
        )
        ok = http.get(uri, headers={"Authorization": auth})
        assert ok.status_code == 200, ok.text
        replay = http.get(uri, headers={"Authorization": auth})
        assert replay.status_code == 401
        assert replay.json()["error"] == "nonce-replayed"
        assert replay.headers.get_list("www-authenticate")  # a fresh challenge comes with it
        # The same nonce with a higher count is a new request (RFC 7616 §3.4); a lower one is not.
        again = client_authorization(
            username="alice", password=PASSWORD, method="GET", uri=uri, challenge=challenge, nc=2
        )
        assert http.get(uri, headers={"Authorization": again}).status_code == 200
        lower = client_authorization(
            username="alice", password=PASSWORD, method="GET", uri=uri, challenge=challenge, nc=1
        )
        assert http.get(uri, headers={"Authorization": lower}).json()["error"] == "nonce-replayed"


def test_digest_over_post_json(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        body = {"to": DEST, "callback": CALLBACK}
        first = http.post("/webcallback", json=body)
        assert first.status_code == 401
        assert first.headers["content-type"].startswith("application/json")
        challenge = parse_challenge(first.headers.get_list("www-authenticate")[0])
        auth = client_authorization(
            username="alice", password=PASSWORD, method="POST", uri="/webcallback", challenge=challenge
        )
        assert http.post("/webcallback", json=body, headers={"Authorization": auth}).status_code == 200


def test_digest_wrong_password_and_wrong_uri(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url)
    uri = uri_for()
    with lab.server() as url, httpx.Client(base_url=url) as http:
        challenge = challenge_for(http, uri, "SHA-256")
        bad = client_authorization(
            username="alice", password="nope", method="GET", uri=uri, challenge=challenge
        )
        refused = http.get(uri, headers={"Authorization": bad})
        assert refused.status_code == 401 and refused.json()["error"] == "authentication-failed"
        # A response computed for another request line (e.g. another target number) is refused.
        other = uri_for(targetNumber="+12025550199")
        moved = client_authorization(
            username="alice", password=PASSWORD, method="GET", uri=uri, challenge=challenge, nc=5
        )
        assert http.get(other, headers={"Authorization": moved}).status_code == 400
        forged = http.get(uri, headers={"Authorization": moved.replace(challenge["nonce"], "AAAA" * 12)})
        assert forged.status_code == 401 and forged.json()["error"] == "nonce-stale"


def test_expired_digest_nonce_is_stale(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url, security__digest__nonce_lifetime="1")
    uri = uri_for()
    with lab.server() as url, httpx.Client(base_url=url) as http:
        challenge = challenge_for(http, uri, "SHA-256")
        import time

        time.sleep(2.1)
        auth = client_authorization(
            username="alice", password=PASSWORD, method="GET", uri=uri, challenge=challenge
        )
        stale = http.get(uri, headers={"Authorization": auth})
        assert stale.status_code == 401
        assert stale.json()["error"] == "nonce-stale"
        assert "stale=true" in stale.headers["www-authenticate"]


def test_digest_works_over_plain_http_while_passwords_do_not(make_lab: MakeLab, db_url: str) -> None:
    lab = make_lab(db_url)
    with lab.server() as url, httpx.Client(base_url=url) as http:
        plain = http.get(uri_for(username="alice", password=PASSWORD))
        assert plain.status_code == 403 and plain.json()["error"] == "password-needs-https"
        # httpx's own Digest implementation (a third-party client) interoperates.
        ok = http.get(uri_for(), auth=httpx.DigestAuth("alice", PASSWORD))
        assert ok.status_code == 200, ok.text
