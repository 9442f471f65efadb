"""The commented sample configuration `webcallback config init` writes, generated from the typed
settings (`config.py`): every section, every setting's documentation, every default — so the
sample cannot drift from the code. Settings appear commented out (`#key = default`), so that a
later version's new defaults still apply; uncomment what you change. A setting unset by default
is described but has no line to uncomment (write one, e.g. `trunk = "sip:..."`)."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import typing
from typing import Any

from webcallback.config import Secret, Settings

WIDTH = 98

HEADER = """\
# webcallback configuration, written by `webcallback config init`.
#
# Every setting is shown with its documentation and its built-in default, commented out: uncomment
# a line to change it. Relative paths are relative to this file's directory. Environment variables
# WEBCALLBACK_<SECTION>__<KEY> override this file (docs/configuration.md). Keep this file private
# if it holds secrets (api.token, engine.sip.password, a database password).
"""


def sample_config() -> str:
    parts = [HEADER]
    _section(Settings, "", "", parts)
    return "\n".join(parts).rstrip() + "\n"


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH - 2, initial_indent="# ", subsequent_indent="# ")


def _toml(value: Any) -> str:
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return json.dumps(value)


def _own_doc(cls: type[Any]) -> str:
    doc = cls.__doc__ or ""
    return "" if doc.startswith(cls.__name__ + "(") else " ".join(doc.split())  # dataclass's own repr


def _section(cls: type[Any], name: str, field_doc: str, parts: list[str]) -> None:
    hints = typing.get_type_hints(cls)
    instance = cls()
    leaves: list[str] = []
    nested: list[tuple[type[Any], str, str]] = []
    for f in dataclasses.fields(cls):
        tp, doc = hints[f.name], str(f.metadata.get("doc", ""))
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            nested.append((tp, f"{name}.{f.name}" if name else f.name, doc))
            continue
        default = getattr(instance, f.name)
        leaves += _comment(doc)
        if default is None or isinstance(default, Secret):
            leaves.append(f"# ({f.name}: unset by default)")
        else:
            leaves.append(f"#{f.name} = {_toml(default)}")
        leaves.append("")
    if name:
        intro = " ".join(t for t in (field_doc, _own_doc(cls)) if t)
        parts.append("\n".join([*_comment(intro), f"[{name}]", "", *leaves]))
    for tp, child, doc in nested:
        _section(tp, child, doc, parts)
