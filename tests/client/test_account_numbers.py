from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webcallback.client import AccountError, NumberError, load_account, normalize_number, parse_account
from webcallback.client.account import DEFAULT_TIMEOUT, account_from_mapping


def test_reads_every_child_node(tmp_path: Path) -> None:
    path = tmp_path / "account.xml"
    path.write_text(
        "<?xml version='1.0' encoding='utf-8'?>\n<account>\n  <username> johndow </username>\n"
        "  <wcb_url>https://example.com/?a=1&amp;b=2</wcb_url>\n  <title>Jöhn</title>\n"
        "  <wcb_customHeaders>X-A: 1\nX-B: 2</wcb_customHeaders>\n  <empty/>\n</account>\n",
        encoding="utf-8",
    )
    account = load_account(path)
    assert account.nodes == {
        "username": "johndow",
        "wcb_url": "https://example.com/?a=1&b=2",
        "title": "Jöhn",
        "wcb_customHeaders": "X-A: 1\nX-B: 2",
        "empty": "",
    }
    assert account.get("absent") == ""


@pytest.mark.parametrize(
    "text",
    [
        '<!DOCTYPE account [<!ENTITY x "boom">]><account><username>&x;</username></account>',
        '<!DOCTYPE account SYSTEM "http://127.0.0.1:1/evil.dtd"><account/>',
        "<accounts><account/></accounts>",
        "<account><username>unclosed</account>",
        "",
    ],
)
def test_refuses_dtds_and_bad_documents(text: str) -> None:
    with pytest.raises(AccountError):
        parse_account(text)


def test_missing_file_is_an_account_error(tmp_path: Path) -> None:
    with pytest.raises(AccountError, match="cannot read"):
        load_account(tmp_path / "nope.xml")


@pytest.mark.parametrize(("text", "expected"), [("", DEFAULT_TIMEOUT), ("5", 5.0), ("0.5", 0.5)])
def test_timeout(text: str, expected: float) -> None:
    assert account_from_mapping({"wcb_timeout": text}).timeout() == expected


@pytest.mark.parametrize("text", ["0", "-3", "soon", "inf", "nan"])
def test_bad_timeout(text: str) -> None:
    with pytest.raises(AccountError, match="wcb_timeout"):
        account_from_mapping({"wcb_timeout": text}).timeout()


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+1 (555) 123-1234", "+15551231234"),  # the documented example
        ("12345", "12345"),
        (" 0049 30.1234/56 ", "0049301234 56".replace(" ", "")),
        ("*100#", "*100#"),
        ("1+2", "12"),  # only a LEADING + survives
    ],
)
def test_normalize_number(typed: str, expected: str) -> None:
    assert normalize_number(typed) == expected


@pytest.mark.parametrize("typed", ["", "  ", "+", "abc", "*#"])
def test_normalize_number_needs_a_digit(typed: str) -> None:
    with pytest.raises(NumberError):
        normalize_number(typed)


@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: f"<account>{t}</account>"))
def test_parse_account_raises_only_account_error(data: bytes | str) -> None:
    with contextlib.suppress(AccountError):
        parse_account(data)
