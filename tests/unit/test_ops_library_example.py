"""docs/library.md's examples run, in order, on the in-memory adapters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[str]:
    return BLOCK.findall((ROOT / "docs" / "library.md").read_text(encoding="utf-8"))


def test_the_page_has_examples() -> None:
    assert len(_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_library_example_runs(
    index: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)  # the examples read docs/model.json relative to the repo
    namespace: dict[str, object] = {"__name__": "library_example"}
    exec(compile(_blocks()[index], f"docs/library.md[{index}]", "exec"), namespace)
    assert capsys.readouterr().out.strip(), "each example prints what it shows"
