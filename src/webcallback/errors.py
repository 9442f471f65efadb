"""The errors the API answers with. Every one carries an HTTP status, a stable `error_id` slug that
clients switch on, and the `message` the app shows the user (keep it under 100 characters: the app
falls back to the first 100 characters of the body).

    ApiError
    ├── BadRequest                 400 bad-request, missing-parameter, invalid-number, ...
    │   ├── PayloadTooLarge        413 body-too-large
    │   └── UnsupportedMediaType   415 unsupported-content-type
    ├── AuthenticationFailed       401 authentication-failed, nonce-replayed, missing-credentials,
    │                                  nonce-stale (with `WWW-Authenticate: Digest` challenges)
    ├── Forbidden                  403 password-needs-https, insufficient-credit, account-disabled,
    │                                  number-refused, callback-not-registered, country-refused
    ├── NotFound                   404 not-found
    ├── TooManyRequests            429 locked-out, rate-limited, too-many-callbacks, daily-limit,
    │                                  spend-limit (carries Retry-After)
    └── ServiceUnavailable         503
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status_code = 500
    error_id = "internal-error"

    def __init__(
        self, message: str, *, error_id: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_id is not None:
            self.error_id = error_id
        self.details = details or {}
        # Extra response headers; a list because some (WWW-Authenticate) may repeat.
        self.headers: list[tuple[str, str]] = []


class BadRequest(ApiError):
    status_code = 400
    error_id = "bad-request"


class PayloadTooLarge(BadRequest):
    status_code = 413
    error_id = "body-too-large"


class UnsupportedMediaType(BadRequest):
    status_code = 415
    error_id = "unsupported-content-type"


class AuthenticationFailed(ApiError):
    status_code = 401
    error_id = "authentication-failed"


class Forbidden(ApiError):
    status_code = 403
    error_id = "forbidden"


class NotFound(ApiError):
    status_code = 404
    error_id = "not-found"


class TooManyRequests(ApiError):
    status_code = 429
    error_id = "too-many-requests"

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    """The service cannot take the request now (its database is unreachable or failing); the
    client may retry after `retry_after` seconds."""

    status_code = 503
    error_id = "service-unavailable"

    def __init__(self, message: str = "", *, retry_after: int = 5, **kw: Any) -> None:
        super().__init__(message or SERVICE_UNAVAILABLE, **kw)
        self.retry_after = retry_after


NOT_ENOUGH_CREDIT = "Not enough credit for this call."
BAD_CREDENTIALS = "Wrong username or password."
SERVICE_UNAVAILABLE = "Service temporarily unavailable, please try again."
