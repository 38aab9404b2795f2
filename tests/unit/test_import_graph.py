"""The import graph check of ``make check`` (``tests/import_cycles.py``): src/ has no import
cycle and no unexplained function-level import, and the check finds both where they exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import import_cycles


def _package(root: Path, name: str, files: dict[str, str]) -> Path:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, text in files.items():
        (package / f"{module}.py").write_text(text)
    return root


def test_src_has_no_import_cycle() -> None:
    assert import_cycles.find_cycles(import_cycles.build_graph()) == []


def test_every_function_level_import_in_src_says_why() -> None:
    unchecked = import_cycles.UNCHECKED_REASONS
    assert import_cycles.unexplained_local_imports(unchecked=unchecked) == []


@pytest.mark.parametrize(
    ("name", "files", "cycle"),
    [
        pytest.param(
            "cyclic_a",
            {
                "top": "from cyclic_a import low\n",
                "low": "def main() -> None:\n    from cyclic_a import top  # the hidden way back\n",
                "leaf": "",
            },
            ("cyclic_a.low", "cyclic_a.top"),
            id="closed by an import inside a function",
        ),
        pytest.param(
            "cyclic_b",
            {
                "root": (
                    'def lazy(target: str) -> None: ...\n\nFACTORY = lazy("cyclic_b.http:make")\n'
                ),
                "http": "import cyclic_b.root\n",
            },
            ("cyclic_b.http", "cyclic_b.root"),
            id="through a string import",
        ),
    ],
)
def test_a_hidden_cycle_is_found(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    files: dict[str, str],
    cycle: tuple[str, str],
) -> None:
    src = _package(tmp_path, name, files)
    monkeypatch.syspath_prepend(str(src))
    graph = import_cycles.build_graph(src, [name])
    assert import_cycles.find_cycles(graph) == [cycle]


def test_a_function_level_import_without_a_comment_is_reported(tmp_path: Path) -> None:
    src = _package(
        tmp_path,
        "deferring",
        {
            "mod": (
                "def explained() -> None:\n"
                "    # deferred: heavy\n"
                "    import json\n"
                "    import csv\n"
                "\n\n"
                "def inline() -> None:\n"
                "    import json  # deferred: heavy\n"
                "\n\n"
                "def bare() -> None:\n"
                "    x = 1\n"
                "    import json\n"
            )
        },
    )
    found = import_cycles.unexplained_local_imports(src, ["deferring"])
    assert [(item.path, item.line, item.module) for item in found] == [
        ("deferring/mod.py", 13, "json")
    ]
