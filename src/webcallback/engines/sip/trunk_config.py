"""`[engine.sip]` trunk settings read into `core.trunks.Trunk`s, checked at start-up. Pure."""

from __future__ import annotations

from webcallback.config import SipSettings, TrunkSettings
from webcallback.core.trunks import Trunk
from webcallback.domain import EngineError
from webcallback.engines.sip.addressing import parse_trunk


def trunk_entries(settings: SipSettings) -> list[tuple[str, TrunkSettings]]:
    """(key, entry) of every trunk: the `[[engine.sip.trunks]]`, or the single `trunk` (with
    `username`/`password`) as one entry; the loopback lab's when neither is set."""
    if not settings.trunks:
        single = TrunkSettings(
            uri=settings.trunk or "", username=settings.username, password=settings.password
        )
        return [("engine.sip.trunk", single)]
    for key in ("trunk", "username", "password"):
        if getattr(settings, key) is not None:
            raise EngineError(f"engine.sip.{key}: not with engine.sip.trunks (set it on each trunk)")
    return [(f"engine.sip.trunks[{i}]", t) for i, t in enumerate(settings.trunks)]


def build_trunks(settings: SipSettings) -> list[Trunk]:
    trunks: list[Trunk] = []
    for key, entry in trunk_entries(settings):
        where = parse_trunk(entry.uri or None, f"{key}.uri" if settings.trunks else key)
        if entry.number_format == "national" and not entry.country_code.isdigit():
            raise EngineError(f"{key}.country_code: digits needed with number_format = \"national\"")
        if entry.privacy and entry.caller_id != "pai":
            raise EngineError(f"{key}.privacy: needs caller_id = \"pai\" (RFC 3325)")
        name = entry.name or str(where)
        if any(t.name == name for t in trunks):
            raise EngineError(f"{key}.name: {name!r} is used by another trunk")
        trunks.append(Trunk(name=name, host=where.host, port=where.port, settings=entry))
    return trunks
