"""One-way layering, read from the source: no cycle between nnexp's packages, nothing imports the
command line, and a run dir's file names are spelt in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "nnexp"


def imports() -> dict[str, dict[str, set[str]]]:
    """{importing unit: {imported unit: files}}, where a unit is a subpackage (``nnexp.sweeps``) or
    a top-level module (``nnexp.job``); imports inside functions count too."""
    def unit(module: str) -> str | None:
        parts = module.split(".")
        return ".".join(parts[:2]) if parts[0] == "nnexp" and len(parts) > 1 else None

    graph: dict[str, dict[str, set[str]]] = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        source = unit(".".join(relative.parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            for name in names:
                target = unit(name)
                if target and target != source and (ROOT.parent / target.replace(".", "/")).exists() or \
                        target and (ROOT.parent / (target.replace(".", "/") + ".py")).exists() and target != source:
                    graph.setdefault(source, {}).setdefault(target, set()).add(str(relative))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def is_package(unit: str) -> bool:
    return (ROOT.parent / unit.replace(".", "/")).is_dir()


def test_no_package_is_in_an_import_cycle():
    graph = imports()
    tangled = [component for component in cycles(graph) if any(map(is_package, component))]
    details = [" -> ".join(component) + ": " + "; ".join(
        f"{a} imports {b} in {sorted(graph[a][b])[0]}" for a in component for b in component if b in graph.get(a, {}))
        for component in tangled]
    assert not tangled, "\n".join(details)


def test_the_cycle_check_finds_a_cycle():
    graph = {"nnexp.a": {"nnexp.b": {"x"}}, "nnexp.b": {"nnexp.c": {"y"}}, "nnexp.c": {"nnexp.a": {"z"}}, "nnexp.d": {"nnexp.a": {"w"}}}
    assert cycles(graph) == [["nnexp.a", "nnexp.b", "nnexp.c"]]


def test_nothing_imports_the_command_line():
    importers = {source: sorted(targets["nnexp.cli"]) for source, targets in imports().items() if "nnexp.cli" in targets}
    assert not importers, importers  # the warm server's child runs nnexp.command, as the console entry point does


def test_run_dir_file_names_are_spelt_only_in_nnexp_results():
    names = ("metrics.json", "history.csv", "model.pt", "config.yaml", "model_summary.txt", "study.json")
    spelt = {}
    for path in ROOT.rglob("*.py"):
        if path.name == "results.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"""["'](\.hydra/)?(%s)["']""" % "|".join(map(re.escape, names)), code):
                spelt.setdefault(str(path.relative_to(ROOT.parent)), []).append(number)
    assert not spelt, spelt
