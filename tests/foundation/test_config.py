from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from webcallback.cli.main import main
from webcallback.config import ConfigError, Secret, iter_fields, load_settings


def test_defaults() -> None:
    s = load_settings(path=None, environ={})
    assert s.server.listen == "127.0.0.1:8080"
    assert s.database.url == "sqlite:///var/webcallback.db"
    assert s.api.params.target == ("targetNumber", "to")
    assert s.auth.allow_password_over_http is False


def test_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[server]\nlisten = "0.0.0.0:9000"\n[calls]\nring_timeout = 20\n[api.params]\ntarget = ["dest"]\n'
    )
    s = load_settings(f, environ={"WEBCALLBACK_SERVER__LISTEN": "127.0.0.1:9100"})
    assert s.server.listen == "127.0.0.1:9100"  # environment wins over the file
    assert s.calls.ring_timeout == 20.0
    assert s.api.params.target == ("dest",)


def test_working_directory_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "webcallback.toml").write_text('[numbers]\ndefault_region = "GB"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).numbers.default_region == "GB"


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ('[server]\nlisen = "x"\n', {}, "server.lisen"),
        ("[nosuch]\n", {}, "nosuch"),
        ('[calls]\nring_timeout = "soon"\n', {}, "calls.ring_timeout"),
        ('[calls]\nleg_order = "random"\n', {}, "calls.leg_order"),
        ("", {"WEBCALLBACK_AUTH__ALLOW_PASSWORD_OVER_HTTP": "maybe"}, "auth.allow_password_over_http"),
        ("", {"WEBCALLBACK_API__MAX_BODY_BYTES": "lots"}, "api.max_body_bytes"),
        ("", {"WEBCALLBACK_API__NOSUCH": "1"}, "api.nosuch"),
    ],
)
def test_invalid_key_or_value_names_the_key(tmp_path: Path, toml: str, env: dict[str, str], key: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(f, environ=env)
    assert err.value.key == key


def test_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[server]\nlisen = "x"\n')
    result = CliRunner().invoke(main, ["config", "show", "--config", str(f)])
    assert result.exit_code == 2
    assert "server.lisen" in result.output


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[api]\ntoken = "tok-very-secret"\n[secrets]\nkey = "a2V5LXZlcnktc2VjcmV0"\n')
    result = CliRunner().invoke(main, ["--config", str(f), "config", "show"])
    assert result.exit_code == 0, result.output
    assert "tok-very-secret" not in result.output and "a2V5LXZlcnktc2VjcmV0" not in result.output
    assert 'token = "**********"' in result.output


def test_secret_never_shows_itself() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2"


def test_every_setting_is_documented() -> None:
    fields = list(iter_fields())
    assert len(fields) > 30
    assert all(doc for _key, _tp, _default, doc in fields)


def test_documentation_lists_every_key() -> None:
    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    missing = [key for key, *_ in iter_fields() if f"`{key}`" not in text]
    assert not missing, f"docs/configuration.md misses {missing}; run python -m webcallback.docs"
