"""``make check``: no import cycle in src/, and every import inside a function says why.

    python -m tests.import_cycles

The graph is grimp's (the library import-linter is built on), over the three top-level packages
with every import statement in them: module level, inside functions, under
``if TYPE_CHECKING:``. The container's string imports (``lazy("module:name")``) are added as
imports too, so a cycle cannot hide in one. Each
cycle is reported once, as the shortest one through an import that closes it.

An import inside a function is allowed only where it defers something heavy or optional (a
driver, the HTTP framework): it carries a comment on its line or right above it saying so.
Exits 1 with what is wrong, 0 when nothing is.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs
import grimp

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = ("core", "adapters", "entrypoints")
#: Calls whose first argument names a module as ``"package.module:name"`` (entrypoints.container).
STRING_IMPORTS = frozenset({"lazy"})
#: Files whose function-level imports are not checked (none: every one says why it is deferred).
UNCHECKED_REASONS: frozenset[str] = frozenset()


@attrs.frozen
class LocalImport:
    """An import statement inside a function."""

    path: str  # relative to the source root
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: import of {self.module} inside a function, no reason"


def build_graph(src: Path = SRC, packages: Iterable[str] = PACKAGES) -> grimp.ImportGraph:
    """The import graph of ``packages`` (importable from ``src``), string imports included."""
    names = tuple(packages)
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    graph = grimp.build_graph(*names, include_external_packages=False, cache_dir=None)
    for path, module in _modules(src, names):
        for target in _string_imports(path):
            if target in graph.modules and target != module:
                graph.add_import(importer=module, imported=target)
    return graph


def find_cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """Each import cycle once (rotated to start at its smallest module), shortest first."""
    cycles: set[tuple[str, ...]] = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is None:
                continue
            cycle = (importer, *back[:-1])
            start = cycle.index(min(cycle))
            cycles.add(cycle[start:] + cycle[:start])
    return sorted(cycles, key=lambda cycle: (len(cycle), cycle))


def unexplained_local_imports(
    src: Path = SRC, packages: Iterable[str] = PACKAGES, unchecked: Iterable[str] = ()
) -> list[LocalImport]:
    """Imports inside functions with no comment on their line or in the lines right above."""
    skip = set(unchecked)
    found: set[LocalImport] = set()
    for path, _module in _modules(src, tuple(packages)):
        relative = path.relative_to(src).as_posix()
        if relative in skip:
            continue
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        covered = {
            line
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)
        }
        for node in _local_imports(tree):
            if not _explained(lines, node.lineno, covered):
                names = ", ".join(alias.name for alias in node.names)
                module = f"{node.module} ({names})" if isinstance(node, ast.ImportFrom) else names
                found.add(LocalImport(relative, node.lineno, module))
    return sorted(found, key=lambda item: (item.path, item.line))


def _modules(src: Path, packages: tuple[str, ...]) -> Iterator[tuple[Path, str]]:
    for package in packages:
        for path in sorted((src / package).rglob("*.py")):
            parts = path.relative_to(src).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield path, ".".join(parts)


def _string_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in STRING_IMPORTS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and ":" in node.args[0].value
        ):
            yield node.args[0].value.partition(":")[0]


def _local_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    yield node


def _explained(lines: list[str], lineno: int, imports: set[int]) -> bool:
    """A comment on the import's line, or above it past the imports of the same block
    (``imports``: the line numbers import statements cover)."""
    if "#" in lines[lineno - 1]:
        return True
    number = lineno - 1
    while number >= 1:
        line = lines[number - 1].strip()
        if line.startswith("#"):
            return True
        if number not in imports:
            return False
        number -= 1
    return False


def main() -> int:
    graph = build_graph()
    cycles = find_cycles(graph)
    local = unexplained_local_imports(unchecked=UNCHECKED_REASONS)
    for cycle in cycles:
        print("import cycle: " + " -> ".join((*cycle, cycle[0])))
    for item in local:
        print(item)
    if cycles or local:
        print(
            f"{len(cycles)} import cycle(s), {len(local)} function-level import(s) without a "
            "reason (make imports point downward; defer only what is heavy or optional, and "
            "say why in a comment)",
            file=sys.stderr,
        )
        return 1
    print(f"no import cycle among {len(graph.modules)} modules; every deferred import says why")
    return 0


if __name__ == "__main__":
    sys.exit(main())
