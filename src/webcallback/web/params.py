"""Request parameters from the query string and the body, whatever format the app's template uses.

Sources: the query string, and the body by its Content-Type — form (`application/x-www-form-urlencoded`),
JSON (`application/json`, a flat object) or XML (`application/xml`, `text/xml`: the flat children of
the root element, parsed with defusedxml, so no DTDs, entities or external references). When the
query string and the body both carry a name, **the body wins**: the URL is fixed in the Account XML
while the body is the per-request template. A name given twice in one source is refused (the two
values could disagree); so are malformed bodies, invalid UTF-8 and unknown content types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from webcallback.errors import BadRequest, UnsupportedMediaType

FORM = "form"
JSON = "json"
XML = "xml"

_MEDIA_TYPES = {
    "application/x-www-form-urlencoded": FORM,
    "application/json": JSON,
    "text/json": JSON,
    "application/xml": XML,
    "text/xml": XML,
}
MAX_PARAMS = 64
MAX_VALUE = 1024


def _shown(name: str) -> str:
    """A client-chosen name quoted for a message: printable, and short enough that the message
    stays under the app's 100 characters."""
    text = "".join(c if c.isprintable() else "?" for c in name)
    return "'" + (text if len(text) <= 24 else text[:21] + "...") + "'"


class MalformedBody(BadRequest):
    error_id = "malformed-body"


class DuplicateParameter(BadRequest):
    error_id = "duplicate-parameter"


@dataclass(frozen=True)
class Params:
    values: dict[str, str]
    body_format: str | None  # the body's format, for `response_format = "auto"`


def body_format_of(content_type: str | None) -> tuple[str | None, str]:
    """(format, charset) of a Content-Type header; format None when there is none."""
    if not content_type:
        return None, "utf-8"
    media, _, rest = content_type.partition(";")
    media = media.strip().lower()
    charset = "utf-8"
    for part in rest.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    if media not in _MEDIA_TYPES:
        raise UnsupportedMediaType(f"Unsupported Content-Type {_shown(media)}: use form, JSON or XML.")
    if charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise UnsupportedMediaType("Only UTF-8 bodies are accepted.")
    return _MEDIA_TYPES[media], charset


def parse_params(query: bytes, body: bytes, content_type: str | None) -> Params:
    values = _pairs_to_dict(_parse_form(query, "query string"), "query string")
    fmt: str | None = None
    if body.strip():
        fmt, _charset = body_format_of(content_type)
        if fmt is None:  # no Content-Type: the app's default is form
            fmt = FORM
        values.update(_parse_body(fmt, body))
    elif content_type:
        fmt, _charset = body_format_of(content_type)
    return Params(values=values, body_format=fmt)


def _parse_body(fmt: str, body: bytes) -> dict[str, str]:
    if fmt == FORM:
        return _pairs_to_dict(_parse_form(body, "body"), "body")
    text = _decode(body, "body")
    if fmt == JSON:
        return _parse_json(text)
    return _parse_xml(text)


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody(f"The {where} is not valid UTF-8.") from None


def _parse_form(raw: bytes, where: str) -> list[tuple[str, str]]:
    text = _decode(raw, where)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMS)
    except UnicodeDecodeError:
        raise MalformedBody(f"The {where} is not valid UTF-8.") from None
    except ValueError:
        raise MalformedBody(f"The {where} has too many parameters.") from None
    return pairs


def _pairs_to_dict(pairs: list[tuple[str, str]], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise DuplicateParameter(f"Parameter {_shown(name)} is given twice in the {where}.")
        out[name] = _check_value(name, value)
    return out


def _check_value(name: str, value: str) -> str:
    if len(value) > MAX_VALUE:
        raise MalformedBody(f"Parameter {_shown(name)} is too long.")
    if "\x00" in value or "\x00" in name:  # no use in any parameter, and PostgreSQL text refuses it
        raise MalformedBody(f"Parameter {_shown(name)} contains a NUL character.")
    return value


def _parse_json(text: str) -> dict[str, str]:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except DuplicateParameter:
        raise
    except (ValueError, RecursionError):  # ValueError also covers integers over Python's digit limit
        raise MalformedBody("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise MalformedBody("The JSON body must be an object.")
    out: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            raise MalformedBody(f"Parameter {_shown(name)} must be a string or a number.")
        if isinstance(value, float) and not value.is_integer():
            raise MalformedBody(f"Parameter {_shown(name)} must be a string or a whole number.")
        out[name] = _check_value(name, str(int(value)) if isinstance(value, float) else str(value))
    return out


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in pairs:
        if name in out:
            raise DuplicateParameter(f"Parameter {_shown(name)} is given twice in the body.")
        out[name] = value
    if len(out) > MAX_PARAMS:
        raise MalformedBody("The body has too many parameters.")
    return out


def _parse_xml(text: str) -> dict[str, str]:
    try:
        root: Element = fromstring(text, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise MalformedBody("The body is not valid XML (DTDs and entities are refused).") from None
    out: dict[str, str] = {}
    for child in root:
        if len(child):
            raise MalformedBody(f"Element {_shown(child.tag)} must hold text only.")
        if child.tag in out:
            raise DuplicateParameter(f"Parameter {_shown(child.tag)} is given twice in the body.")
        out[str(child.tag)] = _check_value(str(child.tag), (child.text or "").strip())
    if len(out) > MAX_PARAMS:
        raise MalformedBody("The body has too many parameters.")
    return out


def pick(values: dict[str, str], names: tuple[str, ...], what: str) -> str | None:
    """The value under any of `names`; aliases that disagree are refused. Empty counts as absent."""
    found = {values[n] for n in names if values.get(n, "").strip()}
    if len(found) > 1:
        raise DuplicateParameter(f"The {what} is given twice with different values.")
    return found.pop().strip() if found else None
