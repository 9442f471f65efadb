"""The embedded SIP engine (RFC 3725 third-party call control on sippy). See `docs/engines.md`."""

from webcallback.engines.sip.engine import SipEngine

__all__ = ["SipEngine"]
