"""`webcallback.client` (and the `client` CLI group) must work without the server's dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import webcallback.client

SRC = Path(__file__).resolve().parents[2] / "src"
CLIENT_FILES = sorted((SRC / "webcallback" / "client").glob("*.py"))
CLI_FILE = SRC / "webcallback" / "cli" / "client_cmd.py"
ALLOWED_OWN = ("webcallback", "webcallback.client", "webcallback.cli", "webcallback.cli.client_cmd")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def allowed(module: str, extra: tuple[str, ...]) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in ("httpx", *extra):
        return True
    return module == "webcallback.client" or module.startswith("webcallback.client.")


@pytest.mark.parametrize("path", [*CLIENT_FILES, CLI_FILE], ids=lambda p: p.name)
def test_ast_imports_only_stdlib_httpx_click_and_client(path: Path) -> None:
    extra = ("click",) if path == CLI_FILE else ()
    bad = sorted(m for m in imported_modules(path) if not allowed(m, extra))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.children
def test_imports_in_a_process_where_server_dependencies_are_missing() -> None:
    script = textwrap.dedent(
        """
        import importlib.abc, sys
        BLOCKED = {"starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "phonenumbers", "iptocc",
                   "defusedxml", "cryptography", "sippy", "tqdm", "granian"}
        ALLOWED_OWN = ("webcallback", "webcallback.client", "webcallback.cli", "webcallback.cli.client_cmd")

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                own = name.startswith("webcallback.") and not (
                    name in ALLOWED_OWN or name.startswith("webcallback.client."))
                if name.split(".")[0] in BLOCKED or own:
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import webcallback.client, webcallback.cli.client_cmd
        from webcallback.client import *
        own = sorted(m for m in sys.modules if m.startswith("webcallback"))
        print(" ".join(own))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = done.stdout.split()
    assert "webcallback.cli.client_cmd" in modules
    server_side = [m for m in modules if m.startswith("webcallback.") and m not in ALLOWED_OWN]
    assert [m for m in server_side if not m.startswith("webcallback.client.")] == []


def test_all_is_pinned() -> None:
    assert set(webcallback.client.__all__) == {
        "USER_AGENT", "WAITING_FOR_CALL", "Account", "AccountError", "CallbackConnectError",
        "CallbackRequest",
        "CallbackResult", "CallbackStatus", "CallbackTimeout", "CallbackTransportError", "ClientError",
        "Context", "Expansion", "NumberError", "Options", "StatusError", "TemplateError",
        "account_from_mapping", "build_request", "expand", "interpret", "load_account", "normalize_number",
        "parse_account", "poll", "poll_async", "send", "send_async",
    }  # fmt: skip
    for name in webcallback.client.__all__:
        assert hasattr(webcallback.client, name)
