"""`webcallback config init`: a commented sample generated from the typed settings, which parses
back to the defaults, as it is and with every setting line uncommented."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from webcallback.cli.main import main
from webcallback.config import Settings, iter_fields, load_settings, resolve_paths


def test_the_sample_names_every_setting_and_parses_back_to_the_defaults(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["config", "init"])
    assert result.exit_code == 0
    sample = result.stdout
    for key, _tp, default, doc in iter_fields():
        section, _, name = key.rpartition(".")
        assert f"\n[{section}]\n" in sample, section
        line = f"({name}: unset by default)" if default is None else f"\n#{name} = "
        assert line in sample, key
        assert " ".join(doc.split()[:4]) in " ".join(sample.replace("\n# ", " ").split()), key
    defaults = resolve_paths(Settings(), tmp_path)  # relative paths are the file's directory's
    as_written = tmp_path / "webcallback.toml"
    as_written.write_text(sample)
    assert load_settings(as_written, environ={}) == defaults
    uncommented = tmp_path / "uncommented.toml"
    uncommented.write_text(re.sub(r"(?m)^#(?=[a-z_]+ = )", "", sample))
    assert uncommented.read_text().count("\n#") < sample.count("\n#")  # something was uncommented
    assert load_settings(uncommented, environ={}) == defaults  # every default written as TOML reads back


def test_init_writes_a_private_file_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "webcallback.toml"
    assert CliRunner().invoke(main, ["config", "init", "-o", str(target)]).exit_code == 0
    assert target.stat().st_mode & 0o777 == 0o640
    target.write_text("# mine\n")
    again = CliRunner().invoke(main, ["config", "init", "-o", str(target)])
    assert again.exit_code == 1 and "exists; not overwritten" in again.stderr
    assert target.read_text() == "# mine\n"
