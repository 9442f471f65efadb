"""ARCHITECTURE.md's layer diagram is drawn from the import contract; these fail when it is stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _layers_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layers_script", ROOT / "docs" / "layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_architecture_diagram_matches_the_contract() -> None:
    layers = _layers_script()
    doc = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    wanted = layers.render(doc, layers.layers_contract(ROOT / "pyproject.toml"))
    assert wanted == doc, "run: python docs/layers.py"


def test_a_changed_contract_changes_the_diagram() -> None:
    layers = _layers_script()
    doc = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    contract = layers.layers_contract(ROOT / "pyproject.toml")
    swapped = {**contract, "layers": list(reversed(contract["layers"]))}
    redrawn = layers.render(doc, swapped)
    assert redrawn != doc
    assert redrawn.index("domain\n") < redrawn.index("cli\n")


def test_the_contract_puts_the_domain_innermost() -> None:
    contract = _layers_script().layers_contract(ROOT / "pyproject.toml")
    assert contract["layers"][-1] == "webcallback.domain"
    assert contract["layers"][0] == "webcallback.cli"
