"""The README's configuration table, generated from ``Settings``.

``python -m entrypoints.settings_doc`` prints the table; ``--write README.md`` replaces the block
between ``<!-- settings:begin -->`` and ``<!-- settings:end -->``; ``--check README.md`` exits 1
when that block is stale (a unit test does the same).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from entrypoints.settings import Settings

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"


def env_names(name: str, field: FieldInfo) -> list[str]:
    """Every environment variable that sets the field, the canonical one first."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(choice) for choice in choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{prefix}{name}".upper()]


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table() -> str:
    """The markdown table: one row per setting, in the class's order."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        names = " or ".join(f"`{env}`" for env in env_names(name, field))
        lines.append(f"| {names} | {_cell(_default(field))} | {_cell(field.description or '')} |")
    return "\n".join(lines)


def render_block() -> str:
    return f"{BEGIN}\n{render_table()}\n{END}"


def current_block(text: str) -> str:
    """The block between the markers in ``text`` (markers included)."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... {END} block found")
    return text[start : end + len(END)]


def refresh(text: str) -> str:
    return text.replace(current_block(text), render_block())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] in {"--write", "--check"}:
        path = Path(args[1])
        text = path.read_text(encoding="utf-8")
        if args[0] == "--check":
            stale = current_block(text) != render_block()
            if stale:
                sys.stderr.write(f"{path}: configuration table is stale; run --write\n")
            return int(stale)
        path.write_text(refresh(text), encoding="utf-8")
        return 0
    if args:
        sys.stderr.write("usage: python -m entrypoints.settings_doc [--write|--check README.md]\n")
        return 2
    sys.stdout.write(render_table() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
