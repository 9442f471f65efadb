from __future__ import annotations

from pathlib import Path

from webcallback.core import TRANSITIONS
from webcallback.core.diagram import main, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "call-states.md"


def test_committed_diagram_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m webcallback.core.diagram"


def test_every_transition_is_in_the_table(tmp_path: Path) -> None:
    out = tmp_path / "states.md"
    assert main([str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("\n| ") - 1 == sum(len(row) for row in TRANSITIONS.values())
    assert "stateDiagram-v2" in text
