"""Hostile and random requests for the endpoint fuzzers (the CI test and `bench/fuzz.py`).

`random_case(rng)` draws one request in one of the four body formats (query, form, JSON, XML) or
raw bytes, with a mix of valid and broken credentials, numbers, headers and encodings; `CORPUS`
holds the named attacks every run includes (XML bombs, external entities, deep nesting, huge
numbers, invalid UTF-8, header injection, duplicate parameters, oversized bodies)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

USER, PASSWORD = "johndow", "secretW0rd"
NAMES = [
    "targetNumber",
    "to",
    "callbackNumber",
    "callback",
    "username",
    "u",
    "user",
    "password",
    "p",
    "nonce",
    "hash",
    "sha1",
    "x",
    "",
    "to[]",
    "<x>",
    "ünï",
]
GOOD_NUMBERS = [
    "+12025550123",
    "+12025550124",
    "+442079460958",
    "+33612345678",
    "(202) 555-0142",
    "0044 20 7946 0958",
]
BAD_NUMBERS = [
    "+19005550199",
    "+4918051234567",
    "+15551231234",
    "",
    " ",
    "+",
    "00",
    "+" + "9" * 40,
    "9" * 5000,
    "1e999",
    "-1",
    "+1 202 555 0123 ext 9",
    "١٢٣٤٥",
    "+1\x00202",
    "'; DROP TABLE accounts; --",
]
STRINGS = [
    "",
    "a",
    "A" * 1025,
    "\x00",
    "\r\n",
    "ü",
    "😀" * 50,
    "%00",
    "%ff",
    "&amp;",
    "<![CDATA[x]]>",
    "${jndi:x}",
    "../../etc/passwd",
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
]
CONTENT_TYPES = [
    "application/json",
    "application/xml",
    "text/xml",
    "application/x-www-form-urlencoded",
    "text/json; charset=utf-8",
    "application/json; charset=latin-1",
    "multipart/form-data",
    "text/plain",
    "",
    'application/xml; charset="utf-8"',
    "application/json;;;",
    "*/*",
]
ACCEPTS = [
    "",
    "application/json",
    "application/xml",
    "application/x-www-form-urlencoded",
    "*/*",
    "text/html",
    "application/xml;q=0.1, application/json;q=0.9",
    "\x7f",
]
LIMIT = 16384


@dataclass
class Case:
    name: str
    method: str
    target: str  # path and query, already encoded (may carry %FF and friends)
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _value(rng: random.Random, name: str) -> str:
    if name in ("targetNumber", "to", "callbackNumber", "callback"):
        return rng.choice(GOOD_NUMBERS if rng.random() < 0.6 else BAD_NUMBERS)
    if name in ("username", "u", "user"):
        return rng.choice([USER, USER, "nobody", "", USER.upper(), "j" * 300])
    if name in ("password", "p"):
        return rng.choice([PASSWORD, PASSWORD, "wrong", "", "x" * 2000])
    if name == "nonce":
        return rng.choice(["abcdefgh12", "short", "n" * 200, str(rng.random())])
    if name in ("hash", "sha1"):
        return rng.choice(["0" * 40, "zz", "", "A" * 28 + "==", "f" * 64])
    return rng.choice(STRINGS)


def _valid_pairs(rng: random.Random) -> list[tuple[str, str]]:
    """A request that should be accepted, then (usually) one field changed: reaches the policy,
    duplicate, limit and admission paths, not only the parsers."""
    pairs = [
        ("targetNumber", rng.choice(GOOD_NUMBERS)),
        ("callbackNumber", rng.choice(GOOD_NUMBERS)),
        ("username", USER),
        ("password", PASSWORD),
    ]
    if rng.random() < 0.7:
        i = rng.randrange(len(pairs))
        pairs[i] = (pairs[i][0], _value(rng, pairs[i][0]))
    return pairs


def _pairs(rng: random.Random) -> list[tuple[str, str]]:
    if rng.random() < 0.3:
        return _valid_pairs(rng)
    core = ["targetNumber", "callbackNumber", "username", "password"]
    names = [n for n in core if rng.random() < 0.85] + rng.sample(NAMES, rng.randint(0, 4))
    if rng.random() < 0.1:
        names.append(rng.choice(names or ["to"]))  # a duplicate parameter
    return [(n, _value(rng, n)) for n in names]


def _encode(rng: random.Random, fmt: str, pairs: list[tuple[str, str]]) -> tuple[str, bytes, str | None]:
    """(query, body, content type) for the format."""
    if fmt == "query":
        return urlencode(pairs), b"", None
    if fmt == "form":
        return "", urlencode(pairs).encode("utf-8", "surrogatepass"), "application/x-www-form-urlencoded"
    if fmt == "json":
        obj: dict[str, object] = {}
        for k, v in pairs:
            obj[k] = rng.choice([v, v, v, int(rng.random() * 1e12), 1.5, None, True, [v], {"x": v}])
        text = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
        return "", text.encode("utf-8", "surrogatepass"), "application/json"
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in pairs if k.isidentifier())
    body = f'<?xml version="1.0" encoding="UTF-8"?><request>{inner}</request>'
    return "", body.encode("utf-8", "surrogatepass"), rng.choice(["application/xml", "text/xml"])


def _mutate(rng: random.Random, body: bytes) -> bytes:
    if not body or rng.random() > 0.15:
        return body
    data = bytearray(body)
    for _ in range(rng.randint(1, 5)):
        op = rng.random()
        pos = rng.randrange(len(data)) if data else 0
        if op < 0.4 and data:
            data[pos] = rng.randrange(256)
        elif op < 0.7:
            data[pos:pos] = bytes([rng.randrange(256)])
        elif data:
            del data[pos]
    return bytes(data)


def _digest_header(rng: random.Random, target: str) -> str:
    parts = {
        "username": rng.choice([USER, "nobody", 'a"b', ""]),
        "realm": rng.choice(["webcallback", "other", ""]),
        "nonce": rng.choice(["QdrC2T7wCrlRyfTr-KApF0sOPx6hDIaYgSbLfXAiOsNA0baX", "x", "=" * 70, ""]),
        "uri": rng.choice([target, "/webcallback", "http://h/webcallback", "*"]),
        "response": rng.choice(["0" * 32, "0" * 64, "zz"]),
        "qop": rng.choice(["auth", "auth-int", ""]),
        "nc": rng.choice(["00000001", "ffffffff", "1", "zzzzzzzz", "0" * 100]),
        "cnonce": rng.choice(["abc", ""]),
        "algorithm": rng.choice(["MD5", "SHA-256", "SHA-512-256", "md5-sess", ""]),
    }
    keys = [k for k in parts if rng.random() < 0.9]
    text = ", ".join(f'{k}="{parts[k]}"' if rng.random() < 0.7 else f"{k}={parts[k]}" for k in keys)
    return rng.choice(["Digest ", "digest ", "Basic ", "Digest", "Bearer "]) + text


def random_case(rng: random.Random, path: str = "/webcallback") -> Case:
    fmt = rng.choice(["query", "form", "json", "xml", "raw"])
    pairs = _pairs(rng)
    if fmt == "raw":
        query = urlencode(pairs) if rng.random() < 0.5 else ""
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
        ctype: str | None = rng.choice(CONTENT_TYPES)
    else:
        query, body, ctype = _encode(rng, fmt, pairs)
        body = _mutate(rng, body)
    if rng.random() < 0.05:
        query += rng.choice(["&%ff=%fe", "&to=%00", "&=", "&&&", "&" + "a=1&" * 70])
    method = (
        "GET" if fmt == "query" and rng.random() < 0.8 else rng.choice(["POST", "POST", "POST", "PUT", "GET"])
    )
    where = [path] * 6 + [path + "/"] * 2 + ["/healthz", "/openapi.json", "/nope"]
    target = rng.choice(where) + ("?" + query if query else "")
    headers: list[tuple[str, str]] = []
    if ctype is not None and rng.random() < 0.95:
        headers.append(("Content-Type", ctype if rng.random() < 0.9 else rng.choice(CONTENT_TYPES)))
    if rng.random() < 0.5:
        headers.append(("Accept", rng.choice(ACCEPTS)))
    if rng.random() < 0.2:
        headers.append(("Authorization", _digest_header(rng, target)))
    if rng.random() < 0.1:
        headers.append(
            ("X-Forwarded-For", rng.choice(["203.0.113.9", "garbage", "1.1.1.1, 10.0.0.1", "::1"]))
        )
        headers.append(("X-Forwarded-Proto", rng.choice(["https", "http", "gopher"])))
    return Case(f"random-{fmt}", method, target, headers, body)


def _bomb() -> bytes:
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE lolz [", '<!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = "lol" if i == 1 else f"lol{i - 1}"
        lines.append(f'<!ENTITY lol{i} "{("&" + prev + ";") * 10}">')
    lines += ["]>", "<request><to>&lol9;</to></request>"]
    return "\n".join(lines).encode()


def _q(**kw: str) -> str:
    return "?" + urlencode(kw)


def corpus(path: str = "/webcallback") -> list[Case]:
    good = {"to": "+12025550123", "callback": "+12025550124", "u": USER}
    form = ("Content-Type", "application/x-www-form-urlencoded")
    js = ("Content-Type", "application/json")
    xml = ("Content-Type", "application/xml")
    return [
        Case("xml-billion-laughs", "POST", path, [xml], _bomb()),
        Case(
            "xml-external-entity",
            "POST",
            path,
            [xml],
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r><to>&e;</to></r>',
        ),
        Case(
            "xml-external-dtd",
            "POST",
            path,
            [xml],
            b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:1/x.dtd"><r><to>1</to></r>',
        ),
        Case(
            "xml-parameter-entity",
            "POST",
            path,
            [xml],
            b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>',
        ),
        Case("xml-deep-nesting", "POST", path, [xml], b"<r>" + b"<a>" * 2000 + b"</a>" * 2000 + b"</r>"),
        Case("xml-nested-param", "POST", path, [xml], b"<r><to><x>1</x></to></r>"),
        Case(
            "xml-utf16", "POST", path, [xml], '<?xml version="1.0" encoding="UTF-16"?><r/>'.encode("utf-16")
        ),
        Case("xml-huge-attribute", "POST", path, [xml], b'<r a="' + b"x" * 16000 + b'"/>'),
        Case("json-deep-nesting", "POST", path, [js], b"[" * 8000 + b"]" * 8000),
        Case("json-deep-object", "POST", path, [js], b'{"a":' * 5000 + b"1" + b"}" * 5000),
        Case("json-huge-integer", "POST", path, [js], b'{"to": ' + b"9" * 10000 + b"}"),
        Case("json-huge-float", "POST", path, [js], b'{"to": 1e999999}'),
        Case("json-nan", "POST", path, [js], b'{"to": NaN, "u": Infinity}'),
        Case("json-duplicate-keys", "POST", path, [js], b'{"to": "+12025550123", "to": "+19005550199"}'),
        Case("json-not-object", "POST", path, [js], b'["to", "+12025550123"]'),
        Case("json-lone-surrogate", "POST", path, [js], b'{"to": "\\ud800"}'),
        Case("json-bom", "POST", path, [js], b'\xef\xbb\xbf{"to": "1"}'),
        Case("invalid-utf8-body", "POST", path, [form], b"to=\xff\xfe&u=\xc3"),
        Case("invalid-utf8-query", "GET", path + "?to=%ff%fe&u=%c3"),
        Case("invalid-utf8-json", "POST", path, [js], b'{"to": "\xff"}'),
        Case("overlong-utf8", "GET", path + "?to=%c0%af"),
        Case("nul-in-query", "GET", path + "?to=%00&u=%00"),
        Case("duplicate-query", "GET", path + "?to=1&to=2&u=a"),
        Case("duplicate-form", "POST", path, [form], b"to=1&to=2"),
        Case("alias-conflict", "GET", path + _q(to="+12025550123", targetNumber="+12025550124", u=USER)),
        Case("too-many-params", "GET", path + "?" + "&".join(f"p{i}=1" for i in range(200))),
        Case("oversized-body", "POST", path, [form], b"to=" + b"1" * (LIMIT * 4)),
        Case("huge-query", "GET", path + "?to=" + "1" * 60000),
        Case("huge-number", "GET", path + _q(to="9" * 1000, callback="+" + "1" * 5000, u=USER)),
        Case("bad-charset", "POST", path, [("Content-Type", "application/json; charset=ebcdic")], b"{}"),
        Case("unknown-media", "POST", path, [("Content-Type", "application/x-evil")], b"a=b"),
        Case("no-content-type", "POST", path, [], b"to=%2B12025550123&u=johndow&p=secretW0rd"),
        Case("header-injection-value", "GET", path + _q(to="+1202555\r\nX-Injected: 1", u=USER)),
        Case("header-injection-encoded", "GET", path + "?to=%0d%0aSet-Cookie:%20x=1&u=" + USER),
        Case(
            "digest-giant", "GET", path + _q(**good), [("Authorization", "Digest " + "a=b, " * 3000 + "a=b")]
        ),
        Case("digest-unterminated", "GET", path + _q(**good), [("Authorization", 'Digest username="x')]),
        Case(
            "digest-bad-ext",
            "GET",
            path + _q(**good),
            [("Authorization", "Digest username*=UTF-8''%ff, realm=r, nonce=n, uri=/, response=r")],
        ),
        Case(
            "digest-dup",
            "GET",
            path + _q(**good),
            [("Authorization", 'Digest username="a", username="b", realm=r, nonce=n, uri=/, response=r')],
        ),
        Case(
            "digest-nul-username",
            "GET",
            path + _q(**good),
            [
                (
                    "Authorization",
                    "Digest username*=UTF-8''a%00b, realm=webcallback, nonce=n, uri=/, response=r",
                )
            ],
        ),
        Case(
            "digest-bad-nc",
            "GET",
            path + _q(**good),
            [
                (
                    "Authorization",
                    'Digest username="johndow", realm="webcallback", nonce="n", uri="'
                    + path
                    + '", response="r", qop=auth, nc=-1, cnonce=c',
                )
            ],
        ),
        Case("xff-garbage", "GET", path + _q(**good), [("X-Forwarded-For", "x" * 5000 + ", ::1, [::1]:80")]),
        Case("accept-garbage", "GET", path + _q(**good), [("Accept", "application/xml" * 300)]),
        Case("path-traversal", "GET", "/webcallback/../../etc/passwd"),
        Case("percent-path", "GET", "/webcallback%2f..%2f"),
        Case("options", "OPTIONS", path),
        Case("delete", "DELETE", path),
    ]


def encode_target(target: str) -> str:
    """Keep already-encoded targets; quote anything a client library would refuse to send."""
    return quote(target, safe="/?&=%:+[],;@!$'()*~")
