"""The web callback endpoint over real HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.api.conftest import PASSWORD, add_account, fresh_nonce, salted
from tests.httpserver import Certificate, RunningServer
from webcallback.service.container import Services


def signed(**params: str) -> dict[str, str]:
    nonce = fresh_nonce()
    return {"username": "alice", "nonce": nonce, "hash": salted(nonce), **params}


def test_seed_get_example_over_https_queues_a_callback(
    tls_server: RunningServer, certificate: Certificate, services: Services
) -> None:
    # The seed's GET example, with alice's credentials.
    query = f"username=alice&password={PASSWORD}&callbackNumber=98765&targetNumber=12345"
    url = f"{tls_server.url}/webcallback/?{query}"
    response = httpx.get(url, verify=str(certificate.cert), headers={"User-Agent": "CloudSoftphone/1.5.6"})
    assert response.status_code == 400  # 98765 and 12345 are no possible US numbers
    assert response.json()["error"] == "invalid-number"
    url = (
        f"{tls_server.url}/webcallback/?username=alice&password={PASSWORD}"
        f"&callbackNumber=%2B15559879876&targetNumber={quote('+1 (555) 123-1234')}"
    )
    response = httpx.get(url, verify=str(certificate.cert))
    assert response.status_code == 200, response.text
    body = response.json()
    stored = services.callbacks.get(body["id"])
    assert (stored.destination, stored.callback, stored.state) == ("+15551231234", "+15559879876", "queued")
    assert stored.client_ip == "127.0.0.1"


def test_seed_post_json_example_over_https(tls_server: RunningServer, certificate: Certificate) -> None:
    body = (
        '{ "username" : "alice", "password" : "S3cret", "to" : "+15551231234", "callback" : "+15559879876" }'
    )
    response = httpx.post(
        f"{tls_server.url}/webcallback/",
        content=body,
        headers={"Content-Type": "application/json"},
        verify=str(certificate.cert),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.json()["id"]) == 16


def test_password_over_plain_http_is_refused(server: RunningServer) -> None:
    response = httpx.get(
        f"{server.url}/webcallback", params={"u": "alice", "p": PASSWORD, "to": "+15551231234"}
    )
    assert response.status_code == 403
    assert response.json()["message"] == "Passwords are accepted only over HTTPS."


def test_wrong_password_and_unknown_user_get_the_same_answer(
    tls_server: RunningServer, certificate: Certificate
) -> None:
    answers = []
    for user, password in (("alice", "wrong"), ("mallory", PASSWORD)):
        response = httpx.get(
            f"{tls_server.url}/webcallback",
            params={"u": user, "p": password, "to": "+15551231234"},
            verify=str(certificate.cert),
        )
        answers.append((response.status_code, response.text))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401


def test_salted_hash_over_http_and_replay_refused(server: RunningServer, services: Services) -> None:
    params = signed(targetNumber="+15551231234")
    first = httpx.get(f"{server.url}/webcallback", params=params)
    assert first.status_code == 200, first.text
    replay = httpx.get(f"{server.url}/webcallback", params=params)
    assert replay.status_code == 401
    assert replay.json() == {"message": "This request was already used.", "error": "nonce-replayed"}
    assert len(services.callbacks.recent()) == 1


def test_hash_compared_case_insensitively(server: RunningServer) -> None:
    params = signed(to="+15551231234")
    params["hash"] = params["hash"].upper()
    assert httpx.get(f"{server.url}/webcallback", params=params).status_code == 200


def test_wrong_hash_refused(server: RunningServer) -> None:
    params = signed(to="+15551231234")
    params["hash"] = salted(params["nonce"], "guess")
    response = httpx.get(f"{server.url}/webcallback", params=params)
    assert response.status_code == 401
    assert response.json()["message"] == "Wrong username or password."


@pytest.mark.parametrize(
    ("content_type", "make_body"),
    [
        ("application/x-www-form-urlencoded", lambda p: "&".join(f"{k}={quote(v)}" for k, v in p.items())),
        ("application/json", json.dumps),
        (
            "application/xml",
            lambda p: "<request>" + "".join(f"<{k}>{v}</{k}>" for k, v in p.items()) + "</request>",
        ),
        (
            "text/xml; charset=utf-8",
            lambda p: "<r>" + "".join(f"<{k}>{v}</{k}>" for k, v in p.items()) + "</r>",
        ),
    ],
)
def test_every_body_format_is_accepted_and_answered_in_kind(
    server: RunningServer, content_type: str, make_body: object
) -> None:
    params = signed(to="+1 (555) 123-1234", callback="+15559879876")
    body = make_body(params)  # type: ignore[operator]  # a parametrised builder; its type varies
    response = httpx.post(f"{server.url}/webcallback", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    if "xml" in content_type:
        assert response.headers["content-type"].startswith("application/xml")
        assert fromstring(response.content).find("id") is not None
    elif "json" in content_type:
        assert "id" in response.json()
    else:
        assert response.text.startswith("id=")


def test_errors_follow_the_request_format(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.url}/webcallback",
        content="<r><username>alice</username></r>",
        headers={"Content-Type": "application/xml"},
    )
    assert response.status_code == 400
    assert fromstring(response.content).findtext("message") == "The destination number is missing."
    response = httpx.post(
        f"{server.url}/webcallback",
        content="username=alice",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert response.text.startswith("message=The+destination+number+is+missing.")


def test_accept_header_chooses_the_format_of_a_get(server: RunningServer) -> None:
    response = httpx.get(
        f"{server.url}/webcallback", params={"u": "alice"}, headers={"Accept": "application/xml"}
    )
    assert response.headers["content-type"].startswith("application/xml")


def test_body_wins_over_query_string(server: RunningServer, services: Services) -> None:
    params = signed(to="+15551231234")
    response = httpx.post(
        f"{server.url}/webcallback?to=%2B15550000000&callback=%2B15550000001",
        json=params | {"callback": "+15559879876"},
    )
    assert response.status_code == 200
    stored = services.callbacks.get(response.json()["id"])
    assert (stored.destination, stored.callback) == ("+15551231234", "+15559879876")


def test_missing_callback_number_uses_the_accounts(server: RunningServer, services: Services) -> None:
    response = httpx.post(f"{server.url}/webcallback", json=signed(to="+15551231234", callback=""))
    assert response.status_code == 200
    assert services.callbacks.get(response.json()["id"]).callback == "+15559879876"


def test_no_callback_number_anywhere_is_400(server: RunningServer, services: Services) -> None:
    services.accounts.update("alice", callback_number=None)
    response = httpx.post(f"{server.url}/webcallback", json=signed(to="+15551231234"))
    assert response.status_code == 400
    assert response.json()["error"] == "missing-callback-number"


def test_national_number_uses_the_accounts_region(server: RunningServer, services: Services) -> None:
    services.accounts.update("alice", region="GB")
    response = httpx.post(
        f"{server.url}/webcallback", json=signed(to="020 7946 0018", callback="07700 900123")
    )
    assert response.status_code == 200, response.text
    stored = services.callbacks.get(response.json()["id"])
    assert (stored.destination, stored.callback) == ("+442079460018", "+447700900123")


def test_no_credit_is_refused_with_the_seeds_message(server: RunningServer, services: Services) -> None:
    services.accounts.update("alice", balance=0)
    response = httpx.post(f"{server.url}/webcallback", json=signed(to="+15551231234"))
    assert response.status_code == 403
    assert response.json()["message"] == "Not enough credit for this call."


def test_disabled_account_is_refused(server: RunningServer, services: Services) -> None:
    services.accounts.update("alice", enabled=False)
    response = httpx.post(f"{server.url}/webcallback", json=signed(to="+15551231234"))
    assert response.status_code == 403
    assert response.json()["error"] == "account-disabled"


def test_invalid_destination_is_400(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/webcallback", json=signed(to="12"))
    assert response.status_code == 400
    assert response.json()["message"] == "The destination number is not a valid phone number."


def test_second_account_is_independent(server: RunningServer, services: Services) -> None:
    add_account(services, "bob", password="pw-of-bob", callback_number="+15550001111")
    nonce = fresh_nonce()
    params = {"u": "bob", "nonce": nonce, "hash": salted(nonce, "pw-of-bob"), "to": "+15551231234"}
    response = httpx.get(f"{server.url}/webcallback", params=params)
    assert response.status_code == 200
    assert services.callbacks.get(response.json()["id"]).username == "bob"


def test_health(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
