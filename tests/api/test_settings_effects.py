"""Settings that change what the endpoint does."""

from __future__ import annotations

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.api.conftest import PASSWORD, fresh_nonce, salted
from tests.httpserver import RunningServer
from webcallback.service.container import Services


def signed(**params: str) -> dict[str, str]:
    nonce = fresh_nonce()
    return {"username": "alice", "nonce": nonce, "hash": salted(nonce), **params}


@pytest.mark.parametrize("env", [{"api__success_body": "empty"}])
def test_empty_success_body(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/webcallback", params=signed(to="+15551231234"))
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("env", [{"api__response_format": "xml"}])
def test_configured_format_wins_over_the_request(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/webcallback", json={"u": "alice"})
    assert response.headers["content-type"].startswith("application/xml")
    assert fromstring(response.content).findtext("message") == "The destination number is missing."


@pytest.mark.parametrize("env", [{"api__path": "/cb/v1", "api__params__target": "dest,number"}])
def test_path_and_parameter_names_are_configurable(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/cb/v1/", params=signed(dest="+15551231234")).status_code == 200
    assert httpx.get(f"{server.url}/cb/v1", params=signed(number="+15551231234")).status_code == 200
    assert httpx.get(f"{server.url}/webcallback", params=signed(to="+15551231234")).status_code == 404
    # `to` is no longer a name for the destination
    assert httpx.get(f"{server.url}/cb/v1", params=signed(to="+15551231234")).status_code == 400


@pytest.mark.parametrize("env", [{"auth__allow_password_over_http": "true"}])
def test_lab_switch_allows_password_over_http(server: RunningServer) -> None:
    params = {"u": "alice", "p": PASSWORD, "to": "+15551231234"}
    assert httpx.get(f"{server.url}/webcallback", params=params).status_code == 200


@pytest.mark.parametrize("env", [{"server__trusted_proxies": "127.0.0.1"}])
def test_trusted_proxy_gives_scheme_and_client_address(server: RunningServer, services: Services) -> None:
    services.accounts.update("alice", region=None)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9, 193.0.6.139"}
    params = {"u": "alice", "p": PASSWORD, "to": "020 7946 0018"}
    response = httpx.get(f"{server.url}/webcallback", params=params, headers=headers)
    assert response.status_code == 200, response.text
    stored = services.callbacks.get(response.json()["id"])
    # 193.0.6.139 (RIPE NCC, Amsterdam) is the nearest untrusted hop: the client; GeoIP says NL,
    # so the national number is read as Dutch.
    assert (stored.client_ip, stored.country) == ("193.0.6.139", "NL")
    assert stored.destination == "+31207946001" or stored.destination.startswith("+31")


def test_untrusted_forwarded_headers_are_ignored(server: RunningServer, services: Services) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "193.0.6.139"}
    params = {"u": "alice", "p": PASSWORD, "to": "+15551231234"}
    response = httpx.get(f"{server.url}/webcallback", params=params, headers=headers)
    assert response.status_code == 403  # still plain HTTP: the header came from nobody we trust


@pytest.mark.parametrize("env", [{"auth__hash_recipe": "password+nonce", "auth__hash_encoding": "base64"}])
def test_hash_recipe_and_encoding_are_configurable(server: RunningServer) -> None:
    import base64
    import hashlib

    nonce = fresh_nonce()
    digest = base64.b64encode(hashlib.sha1((PASSWORD + nonce).encode()).digest()).decode()
    params = {"u": "alice", "nonce": nonce, "hash": digest, "to": "+15551231234"}
    assert httpx.get(f"{server.url}/webcallback", params=params).status_code == 200
