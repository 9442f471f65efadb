"""`webcallback provision xml`, and that its output drives the client to a request the server reads."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from webcallback.cli.main import main
from webcallback.cli.provision_cmd import provision
from webcallback.client import Options, build_request, load_account, parse_account
from webcallback.client._xml import parse_xml
from webcallback.config import Settings, load_settings
from webcallback.provisioning import build_provisioning, public_url


def settings(**env: str) -> Settings:
    return load_settings(os.devnull, {f"WEBCALLBACK_{k.upper()}": v for k, v in env.items()})


def nodes_of(output: str) -> dict[str, str]:
    """Parse the printed nodes the way the portal would (wrapped in an <account>)."""
    return dict(parse_account(f"<account>{output}</account>").nodes)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(provision, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "webcallback.toml"
    path.write_text(
        '[server]\npublic_url = "https://cb.example.com/"\n'
        '[api]\npath = "/wcb/"\n[api.params]\ntarget = ["to", "targetNumber"]\nuser = ["u"]\n'
    )
    return str(path)


def test_json_password(config: str) -> None:
    code, out, err = run("xml", "john", "--config", config)
    assert code == 0 and err == ""
    assert nodes_of(out) == {
        "wcb_url": "https://cb.example.com/wcb",
        "wcb_postData": '{ "u" : "%account[username]%", "password" : "%account[password]%", '
        '"callbackNumber" : "%account[callbackNumber]%", "to" : "%targetNumber%" }',
        "wcb_contentType": "application/json",
        "genericBalanceCheckUrl": "https://cb.example.com/balance",
        "genericBalanceCheckPostData": '{ "u" : "%account[username]%", "password" : "%account[password]%" }',
        "genericBalanceCheckContentType": "application/json",
        "genericRateCheckUrl": "https://cb.example.com/rate",
        "genericRateCheckPostData": '{ "u" : "%account[username]%", "password" : "%account[password]%", '
        '"to" : "%targetNumber%" }',
        "genericRateCheckContentType": "application/json",
    }


def test_get_is_xml_escaped_and_ready_to_paste(config: str) -> None:
    code, out, _ = run("xml", "john", "--format", "get", "--config", config)
    assert code == 0
    first = out.splitlines()[0]
    assert first == (
        "<wcb_url>https://cb.example.com/wcb?u=%account[username]%&amp;password=%account[password]%"
        "&amp;callbackNumber=%account[callbackNumber]%&amp;to=%targetNumber%</wcb_url>"
    )
    assert set(nodes_of(out)) == {"wcb_url", "genericBalanceCheckUrl", "genericRateCheckUrl"}


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ("nonce+password", "%sha1(%nonce%%account[password]%)%"),
        ("password+nonce", "%sha1(%account[password]%%nonce%)%"),
    ],
)
def test_nonce_sha1_follows_the_recipe(recipe: str, expected: str) -> None:
    result = build_provisioning(settings(auth__hash_recipe=recipe), "nonce-sha1", "form")
    post = dict(result.nodes)["wcb_postData"]
    assert post == f"username=%account[username]%&nonce=%nonce%&hash={expected}" + (
        "&callbackNumber=%account[callbackNumber]%&targetNumber=%targetNumber%"
    )


def test_xml_format_and_warnings() -> None:
    result = build_provisioning(settings(server__listen="0.0.0.0:8080"), "password", "xml")
    nodes = dict(result.nodes)
    assert nodes["wcb_contentType"] == "application/xml"
    root = parse_xml(nodes["wcb_postData"])
    assert [child.tag for child in root.children] == [
        "username",
        "password",
        "callbackNumber",
        "targetNumber",
    ]
    assert any("public_url" in w for w in result.warnings)
    assert any("cannot reach" in w for w in result.warnings)
    assert any("asterisks" in w for w in result.warnings)


def test_public_url_derivation() -> None:
    assert (
        public_url(settings(server__listen="10.0.0.5:8443", server__tls_cert="c.pem"))[0]
        == "https://10.0.0.5:8443"
    )
    assert public_url(settings(server__public_url="https://x.example/cb/")) == ("https://x.example/cb", [])


def test_account_file_drives_the_client(config: str, tmp_path: Path) -> None:
    path = tmp_path / "account.xml"
    code, _, err = run(
        "xml", "john", "--auth", "nonce-sha1", "--format", "json", "--config", config,
        "--account-file", str(path), "--callback-number", "+15559879876", "--password", "pw",
    )  # fmt: skip
    assert code == 0 and f"wrote {path}" in err
    account = load_account(path)
    assert (account.get("username"), account.get("password"), account.get("callbackNumber")) == (
        "john",
        "pw",
        "+15559879876",
    )
    request = build_request(account, "+15551231234", Options(nonce="n0nce-123"))
    assert (request.method, request.url) == ("POST", "https://cb.example.com/wcb")
    assert json.loads(request.body) == {
        "u": "john",
        "nonce": "n0nce-123",
        "hash": hashlib.sha1(b"n0nce-123pw").hexdigest(),
        "callbackNumber": "+15559879876",
        "to": "+15551231234",
    }


def test_account_file_without_password(config: str, tmp_path: Path) -> None:
    path = tmp_path / "account.xml"
    run("xml", "john", "--format", "get", "--config", config, "--account-file", str(path))
    account = load_account(path)
    assert "password" not in account.nodes
    url = build_request(account, "123").url
    assert parse_qs(urlsplit(url).query, keep_blank_values=True)["password"] == [""]


def test_registered_in_main(config: str) -> None:
    result = CliRunner().invoke(main, ["--config", config, "provision", "xml", "john"])
    assert result.exit_code == 0 and "<wcb_url>https://cb.example.com/wcb</wcb_url>" in result.stdout
    assert "client" in main.commands


def test_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[auth]\nhash_recipe = 'sideways'\n")
    code, _, err = run("xml", "john", "--config", str(path))
    assert code == 2 and "hash_recipe" in err
