"""Prints the chaos figures table after the run (and writes it to ``.cache``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos import figures


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not figures.ROWS:
        return
    figures.write()
    terminalreporter.section("chaos figures")
    for line in figures.table().splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(also in {figures.FILE})")
