"""Writes the reference table of `docs/configuration.md` from the settings' own documentation, so the
docs cannot drift from the code: `python -m webcallback.config_doc docs/configuration.md`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from webcallback.config import Secret, iter_fields

BEGIN = "<!-- BEGIN GENERATED REFERENCE -->"
END = "<!-- END GENERATED REFERENCE -->"


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, Secret):
        return "unset"
    if isinstance(value, tuple):
        return "`" + json.dumps(list(value)) + "`"
    return "`" + json.dumps(value) + "`"


def reference() -> str:
    rows = ["| key | environment variable | default | meaning |", "|---|---|---|---|"]
    for key, _tp, default, doc in iter_fields():
        env = "WEBCALLBACK_" + key.upper().replace(".", "__")
        meaning = doc.replace("|", "\\|")
        rows.append(f"| `{key}` | `{env}` | {_default(default)} | {meaning} |")
    return "\n".join(rows)


def update(path: Path) -> bool:
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{reference()}\n{END}{tail}"
    if new != text:
        path.write_text(new)
        return True
    return False


if __name__ == "__main__":
    changed = update(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md"))
    print("updated" if changed else "up to date")
