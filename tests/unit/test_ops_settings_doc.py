"""The README's configuration table must match the Settings class."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints import settings_doc
from entrypoints.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_matches_settings() -> None:
    block = settings_doc.current_block(README.read_text(encoding="utf-8"))
    assert block == settings_doc.render_block(), (
        "README.md configuration table is stale: "
        "run `.venv/bin/python -m entrypoints.settings_doc --write README.md`"
    )


def test_every_setting_has_a_row_and_a_description() -> None:
    table = settings_doc.render_table()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"`HEXMARKET_{name.upper()}`" in table


def test_alias_choices_are_listed() -> None:
    table = settings_doc.render_table()
    assert "`KAFKA_BOOTSTRAP_SERVERS`" in table


def test_check_reports_a_stale_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\ny\n")
    assert settings_doc.main(["--check", str(readme)]) == 1
    assert settings_doc.main(["--write", str(readme)]) == 0
    assert settings_doc.main(["--check", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("x\n")
    assert text.endswith("\ny\n")


def test_missing_markers_are_an_error() -> None:
    with pytest.raises(ValueError, match="settings:begin"):
        settings_doc.current_block("no markers here")
