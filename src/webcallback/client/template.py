"""Expand Acrobits parameter templates: `%name%`, `%account[NODE]%`, `%fn(ARG)%`.

Syntax (Acrobits intro and helpdesk): a variable is a name in percent signs; `%account[NODE]%`
is the Account XML node NODE; a function call is `%fn(ARG)%` where ARG is itself a template,
e.g. `%sha1(%nonce%%account[password]%)%`. A `%` that does not start a well-formed placeholder is
literal text, so already-encoded URLs such as `a%20b` survive.

Choices where Acrobits is silent (see docs/client.md):
- Escaping: a substituted value is URL-encoded in URLs and form bodies, JSON-escaped in JSON
  bodies, XML-escaped in XML bodies. `raw` reproduces naive substitution. Function arguments are
  never escaped: `sha1` hashes the plain values.
- Unknown variables and functions are left verbatim (and reported), so a typo is visible on the
  wire; an absent account node expands to "" (the app has no value to put there).
- The password guard: the app sends `%account[password]%` only to https URLs, else asterisks.
  We apply it wherever the variable appears in the request, but not inside function arguments,
  which is how the documented `%sha1(%account[password]%)%` protects the password.
- `sha1` gives lowercase hex by default (base64 optionally); the real format is unknown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

from webcallback.client.account import Account

Escape = Literal["url", "json", "xml", "raw"]
Sha1Format = Literal["hex", "base64"]

PASSWORD_MASK = "****"
"""What the app sends for `%account[password]%` over plain http ("a few asterisks")."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_DEPTH = 16


# ---- the parsed form -------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Variable:
    name: str
    source: str


@dataclass(frozen=True)
class AccountNode:
    name: str
    source: str


@dataclass(frozen=True)
class Call:
    function: str
    argument: tuple[Node, ...]
    source: str


Node = Text | Variable | AccountNode | Call


class _Parser:
    """Recursive descent over the template; results per position are memoised, so that
    pathological input (many unclosed `%f(`) stays linear-ish instead of exponential."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: dict[int, tuple[tuple[Node, ...], int] | None] = {}

    def sequence(self, pos: int, in_call: bool, depth: int) -> tuple[tuple[Node, ...], int] | None:
        """Nodes from pos to the end (or, in a call, to its closing `)%`); None if unclosed."""
        text, start = self.text, pos
        nodes: list[Node] = []
        while pos < len(text):
            if in_call and text.startswith(")%", pos):
                break
            found = self.placeholder(pos, depth) if text[pos] == "%" else None
            if found is None:
                pos += 1
                continue
            if start < pos:
                nodes.append(Text(text[start:pos]))
            node, pos = found
            nodes.append(node)
            start = pos
        else:
            if in_call:
                return None
        if start < pos:
            nodes.append(Text(text[start:pos]))
        return tuple(nodes), pos

    def placeholder(self, pos: int, depth: int) -> tuple[Node, int] | None:
        text = self.text
        match = _NAME.match(text, pos + 1)
        if match is None:
            return None
        name, after = match.group(), match.end()
        if text.startswith("%", after):
            return Variable(name, text[pos : after + 1]), after + 1
        if name == "account" and text.startswith("[", after):
            close = text.find("]%", after)
            node = text[after + 1 : close]
            if close == -1 or not node or "%" in node:
                return None
            return AccountNode(node, text[pos : close + 2]), close + 2
        # A call needs a closing ")%" somewhere after it; checking first keeps unclosed input cheap.
        if text.startswith("(", after) and depth < _MAX_DEPTH and text.find(")%", after) != -1:
            if after not in self.calls:
                self.calls[after] = self.sequence(after + 1, True, depth + 1)
            inner = self.calls[after]
            if inner is None:
                return None
            argument, end = inner
            return Call(name, argument, text[pos : end + 2]), end + 2
        return None


def parse_template(text: str) -> tuple[Node, ...]:
    """Split a template into literal text and placeholders. Never raises."""
    parsed = _Parser(text).sequence(0, False, 0)
    assert parsed is not None  # only an in-call sequence can be unclosed
    return parsed[0]


# ---- expansion -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Everything a template may reference, for ONE request."""

    account: Account
    parameters: Mapping[str, str]
    """Global and service parameters by name: `installid`, `appid`, `targetNumber`, `nonce`..."""
    reveal_password: bool
    """True only when the request URL is https (the app's password guard)."""
    sha1_format: Sha1Format = "hex"


@dataclass(frozen=True)
class Expansion:
    text: str
    unknown: tuple[str, ...] = ()
    """Placeholders left verbatim because no such variable or function exists."""
    missing_nodes: tuple[str, ...] = ()
    """Account nodes referenced but absent (expanded to "")."""
    password_masked: bool = False


@dataclass
class _Notes:
    unknown: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    masked: bool = False


def _sha1(argument: str, context: Context) -> str:
    digest = hashlib.sha1(argument.encode("utf-8"))
    if context.sha1_format == "base64":
        return base64.b64encode(digest.digest()).decode("ascii")
    return digest.hexdigest()


FUNCTIONS: Mapping[str, Callable[[str, Context], str]] = {"sha1": _sha1}
"""Template functions; only `sha1` is documented by Acrobits."""

ESCAPES: Mapping[Escape, Callable[[str], str]] = {
    "url": lambda value: quote(value, safe=""),
    "json": lambda value: json.dumps(value, ensure_ascii=False)[1:-1],
    "xml": lambda value: xml_escape(value, {'"': "&quot;", "'": "&apos;"}),
    "raw": lambda value: value,
}


def body_escape(content_type: str) -> Escape:
    """The escaping for a request body of this Content-Type."""
    media = content_type.split(";", 1)[0].strip().lower()
    if "json" in media:
        return "json"
    if "xml" in media:
        return "xml"
    if media == "application/x-www-form-urlencoded":
        return "url"
    return "raw"


def expand(template: str, context: Context, escape: Escape) -> Expansion:
    """Expand a template; values substituted at the top level are escaped with `escape`."""
    notes = _Notes()
    escaper = ESCAPES[escape]
    parts = [_render(node, context, notes, escaper, top=True) for node in parse_template(template)]
    return Expansion("".join(parts), tuple(notes.unknown), tuple(notes.missing), notes.masked)


def _render(node: Node, context: Context, notes: _Notes, escaper: Callable[[str], str], top: bool) -> str:
    if isinstance(node, Text):
        return node.text
    value = _value(node, context, notes, top)
    if value is None:
        notes.unknown.append(node.source)
        return node.source
    return escaper(value)


def _value(node: Variable | AccountNode | Call, context: Context, notes: _Notes, top: bool) -> str | None:
    """A placeholder's plain value, or None when it is unknown."""
    if isinstance(node, Variable):
        return context.parameters.get(node.name)
    if isinstance(node, AccountNode):
        if node.name not in context.account.nodes:
            notes.missing.append(node.name)
        if node.name == "password" and top and not context.reveal_password:
            notes.masked = True
            return PASSWORD_MASK
        return context.account.get(node.name)
    function = FUNCTIONS.get(node.function)
    if function is None:
        return None
    raw = ESCAPES["raw"]
    argument = "".join(_render(child, context, notes, raw, top=False) for child in node.argument)
    return function(argument, context)
