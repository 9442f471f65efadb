"""Reading one API request: the body (bounded), its parameters, the client, the response format."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from webcallback.config import Settings
from webcallback.errors import ApiError, PayloadTooLarge
from webcallback.security.digest_auth import DigestInput
from webcallback.service.auth import Credentials
from webcallback.web.access import note
from webcallback.web.client_info import ClientInfo, TrustedProxies
from webcallback.web.params import Params, body_format_of, parse_params, pick
from webcallback.web.responses import choose_format


@dataclass(frozen=True)
class ApiInput:
    params: Params
    client: ClientInfo
    credentials: Credentials


def response_format(request: Request, settings: Settings) -> str:
    """Decided before parsing, so that even a malformed body gets its error in the right format."""
    try:
        body_fmt, _ = body_format_of(request.headers.get("content-type"))
    except ApiError:
        body_fmt = None
    return choose_format(settings.api.response_format, body_fmt, request.headers.get("accept"))


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_input(request: Request, settings: Settings, proxies: TrustedProxies) -> ApiInput:
    body = await read_body(request, settings.api.max_body_bytes) if request.method != "GET" else b""
    params = parse_params(request.scope.get("query_string", b""), body, request.headers.get("content-type"))
    peer = request.client.host if request.client else "0.0.0.0"
    client = proxies.resolve(
        peer,
        request.scope.get("scheme", "http"),
        request.headers.get("x-forwarded-for"),
        request.headers.get("x-forwarded-proto"),
    )
    names = settings.api.params
    v = params.values
    credentials = Credentials(
        username=pick(v, names.user, "username"),
        password=pick(v, names.password, "password"),
        nonce=pick(v, names.nonce, "nonce"),
        hash=pick(v, names.hash, "hash"),
        https=client.https,
        digest=DigestInput(
            authorization=request.headers.get("authorization"),
            method=request.method,
            path=request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            query=request.scope.get("query_string", b"").decode("latin-1"),
        ),
    )
    note(request, user=credentials.username, client=client.address)  # for its log lines (access.py)
    return ApiInput(params=params, client=client, credentials=credentials)
