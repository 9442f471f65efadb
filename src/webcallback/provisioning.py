"""The Cloud Softphone Account XML nodes that point the app at THIS server. Pure: settings in, text out.

The provider pastes the nodes into the Cloud Softphone portal (or serves them by external
provisioning). One template per request format; parameter names are the first (canonical) name
of each `api.params` list, so the server is sure to read them. Node names: `wcb_*` (web callback
page), `genericBalanceCheck*` and `genericRateCheck*` (balance and rate checker pages); the rate
checker's ContentType node follows the generic `PrefixContentType` scheme of the intro page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

from webcallback.config import ParamNames, Settings

Auth = Literal["password", "nonce-sha1"]
Format = Literal["json", "form", "xml", "get"]
AUTH_CHOICES: tuple[Auth, ...] = ("password", "nonce-sha1")
FORMAT_CHOICES: tuple[Format, ...] = ("json", "form", "xml", "get")

CONTENT_TYPES: dict[Format, str] = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "xml": "application/xml",
}
_UNROUTABLE_HOSTS = ("0.0.0.0", "::", "[::]", "")

Node = tuple[str, str]


@dataclass(frozen=True)
class Provisioning:
    nodes: tuple[Node, ...]
    warnings: tuple[str, ...] = ()


def public_url(settings: Settings) -> tuple[str, list[str]]:
    """`server.public_url`, else derived from `server.listen` and TLS; with warnings."""
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/"), []
    scheme = "https" if settings.server.tls_cert else "http"
    host = settings.server.listen.rpartition(":")[0]
    warnings = ["server.public_url is not set: the URL is derived from server.listen"]
    if host in _UNROUTABLE_HOSTS:
        warnings.append(f"server.listen binds {host or 'all addresses'}, which the app cannot reach")
    return f"{scheme}://{settings.server.listen}", warnings


def hash_template(recipe: str) -> str:
    """The app-side `%sha1(...)%` matching `auth.hash_recipe`."""
    if recipe == "password+nonce":
        return "%sha1(%account[password]%%nonce%)%"
    return "%sha1(%nonce%%account[password]%)%"


def auth_fields(names: ParamNames, auth: Auth, recipe: str) -> list[Node]:
    user = [(names.user[0], "%account[username]%")]
    if auth == "password":
        return [*user, (names.password[0], "%account[password]%")]
    return [*user, (names.nonce[0], "%nonce%"), (names.hash[0], hash_template(recipe))]


def encode(fields: list[Node], fmt: Format) -> str:
    """The fields as a query string / form body, a JSON object (the seed's spacing) or flat XML."""
    if fmt == "json":
        return "{ " + ", ".join(f'"{name}" : "{value}"' for name, value in fields) + " }"
    if fmt == "xml":
        return "<request>" + "".join(f"<{name}>{value}</{name}>" for name, value in fields) + "</request>"
    return "&".join(f"{name}={value}" for name, value in fields)


def service_nodes(keys: tuple[str, str, str], url: str, fields: list[Node], fmt: Format) -> list[Node]:
    """The (Url, PostData, ContentType) nodes of one service; GET puts the fields in the URL."""
    url_key, post_key, type_key = keys
    if fmt == "get":
        return [(url_key, f"{url}?{encode(fields, 'form')}")]
    return [(url_key, url), (post_key, encode(fields, fmt)), (type_key, CONTENT_TYPES[fmt])]


WCB_KEYS = ("wcb_url", "wcb_postData", "wcb_contentType")
BALANCE_KEYS = ("genericBalanceCheckUrl", "genericBalanceCheckPostData", "genericBalanceCheckContentType")
RATE_KEYS = ("genericRateCheckUrl", "genericRateCheckPostData", "genericRateCheckContentType")


def build_provisioning(settings: Settings, auth: Auth, fmt: Format) -> Provisioning:
    base, warnings = public_url(settings)
    names = settings.api.params
    login = auth_fields(names, auth, settings.auth.hash_recipe)
    target = (names.target[0], "%targetNumber%")
    callback = (names.callback[0], "%account[callbackNumber]%")
    path = "/" + settings.api.path.strip("/")
    nodes = [
        *service_nodes(WCB_KEYS, base + path, [*login, callback, target], fmt),
        *service_nodes(BALANCE_KEYS, base + "/balance", login, fmt),
        *service_nodes(RATE_KEYS, base + "/rate", [*login, target], fmt),
    ]
    if auth == "password" and not base.startswith("https://"):
        warnings.append(
            "the URL is http: the app sends asterisks instead of %account[password]%; "
            "serve https or use --auth nonce-sha1"
        )
    if auth == "nonce-sha1" and settings.auth.hash_encoding == "base64":
        warnings.append(
            "auth.hash_encoding is base64: check on a device that the app's %sha1()% gives base64"
        )
    return Provisioning(tuple(nodes), tuple(warnings))


def render_nodes(nodes: tuple[Node, ...] | list[Node], indent: str = "") -> str:
    """The nodes as XML elements, values escaped (`&` becomes `&amp;`), one per line."""
    return "\n".join(f"{indent}<{name}>{escape(value)}</{name}>" for name, value in nodes)


def account_xml(username: str, callback_number: str, password: str | None, nodes: tuple[Node, ...]) -> str:
    """A complete Account XML, usable by `webcallback client call --account`."""
    identity = [("username", username)]
    if password is not None:
        identity.append(("password", password))
    identity.append(("callbackNumber", callback_number))
    body = render_nodes([*identity, *nodes], indent="  ")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<account>\n{body}\n</account>\n'
