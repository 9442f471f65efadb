"""The client's exception tree.

    ClientError
    ├── AccountError          the Account XML file is unreadable or a node is invalid (local)
    ├── TemplateError         a template cannot be expanded into a valid request (local)
    ├── StatusError           the status API answered with something we cannot use (remote)
    └── CallbackTransportError  no HTTP response at all (remote)
        ├── CallbackTimeout       the server did not answer within the timeout
        └── CallbackConnectError  the connection was refused or failed

A non-2xx response is *not* an exception: it is a normal `CallbackResult` with `ok=False`, because
that is what the app shows the user. Only the failure to get any response raises.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error raised by `webcallback.client`."""


class AccountError(ClientError):
    """The Account XML is not usable (bad file, DTD, unknown method, bad timeout...)."""


class TemplateError(ClientError):
    """A template expanded into something that cannot be sent (e.g. a newline in a header)."""


class StatusError(ClientError):
    """The callback status API returned an unexpected status or body."""


class CallbackTransportError(ClientError):
    """The request got no HTTP response."""


class CallbackTimeout(CallbackTransportError):
    """No response within the request's timeout (`wcb_timeout`)."""


class CallbackConnectError(CallbackTransportError):
    """The TCP/TLS connection could not be made (refused, unreachable, TLS failure)."""
