"""Read an Account XML file, the way Cloud Softphone stores an account.

`<account>` holds one child node per setting (`username`, `password`, `callbackNumber`, `wcb_url`,
...). Every direct child is kept, whatever its name, because templates may reference any node as
`%account[NODE]%`. The file is local and trusted, but we still refuse DTDs (see `_xml`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from webcallback.client._xml import XmlRefused, parse_xml
from webcallback.client.errors import AccountError

DEFAULT_TIMEOUT = 30.0
"""Seconds; the Acrobits docs cut off before the default, 30 matches the SDK's push reporter."""

METHODS = ("GET", "POST", "PUT", "HEAD", "DELETE")
"""The methods the Acrobits generic web-service scheme lists."""


@dataclass(frozen=True)
class Account:
    """The nodes of one `<account>`; values are the node texts, stripped of surrounding whitespace."""

    nodes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, name: str) -> str:
        """A node's value, or "" when the node is absent (the app treats both alike)."""
        return self.nodes.get(name, "")

    @property
    def wcb_url(self) -> str:
        return self.get("wcb_url")

    @property
    def wcb_post_data(self) -> str:
        return self.get("wcb_postData")

    @property
    def wcb_content_type(self) -> str:
        return self.get("wcb_contentType")

    @property
    def wcb_method(self) -> str:
        return self.get("wcb_method")

    @property
    def wcb_custom_headers(self) -> str:
        return self.get("wcb_customHeaders")

    @property
    def wcb_auth_username(self) -> str:
        return self.get("wcb_authUsername")

    @property
    def wcb_auth_password(self) -> str:
        return self.get("wcb_authPassword")

    def timeout(self) -> float:
        """`wcb_timeout` in seconds, else DEFAULT_TIMEOUT. Raises AccountError if not a positive number."""
        text = self.get("wcb_timeout")
        if not text:
            return DEFAULT_TIMEOUT
        try:
            value = float(text)
        except ValueError:
            raise AccountError(f"wcb_timeout must be a number of seconds (got {text!r})") from None
        if not value > 0 or value == float("inf"):
            raise AccountError(f"wcb_timeout must be a positive number of seconds (got {text!r})")
        return value


def account_from_mapping(nodes: Mapping[str, str]) -> Account:
    """An Account from plain data (for tests and programmatic use)."""
    return Account(MappingProxyType(dict(nodes)))


def parse_account(data: bytes | str) -> Account:
    """Parse Account XML text. The root must be `<account>`; raises AccountError."""
    try:
        root = parse_xml(data)
    except XmlRefused as exc:
        raise AccountError(f"not a usable Account XML: {exc}") from None
    if root.tag != "account":
        raise AccountError(f"the root element must be <account>, not <{root.tag}>")
    nodes: dict[str, str] = {}
    for child in root.children:
        # Values are usually single-line; surrounding whitespace comes from pretty-printing.
        # Custom headers keep their inner newlines.
        nodes[child.tag] = child.all_text().strip()
    return account_from_mapping(nodes)


def load_account(path: str | Path) -> Account:
    """Read and parse an Account XML file; raises AccountError (also for I/O errors)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AccountError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_account(data)
