"""The import graph of our packages: one way down the layers, and no cycle anywhere.

`bot/` (Slack in and out) may import `jobs/` and `agents/`; `jobs/` (lifecycle, queues,
schedules) may import `agents/`; `agents/` (the agent and AWS work) imports neither.
`sandbox/` (the dev sandbox, not shipped) may import all three, and none of them
imports it but `agentbot dev` itself. Imports under TYPE_CHECKING and inside functions
count: a cycle that only type checkers follow still ties an interface to an
implementation.
"""

from __future__ import annotations

import graphlib

import grimp
import pytest

PACKAGES = ("bot", "jobs", "agents", "sandbox")
# What each layer may not import.
FORBIDDEN = {
    "agents": ("jobs", "bot", "sandbox"),
    "jobs": ("bot", "sandbox"),
    "bot": ("sandbox",),
}
# `agentbot dev` starts the sandbox, lazily, from the one command that needs it.
ALLOWED = {("bot.cli", "sandbox.dev")}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The import graph of our packages, TYPE_CHECKING and function-level imports included."""
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    """`module:line: statement` for each place `importer` imports `imported`."""
    details = graph.get_import_details(importer=importer, imported=imported)
    return (
        "; ".join(f"{importer}:{d['line_number']}: {d['line_contents']}" for d in details)
        or f"{importer} imports {imported}"
    )


def test_no_module_of_ours_is_part_of_an_import_cycle(graph: grimp.ImportGraph) -> None:
    """Every import among our modules points one way; a cycle is named with its lines."""
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    try:
        graphlib.TopologicalSorter(imports).prepare()
    except graphlib.CycleError as error:
        # Each module in the cycle is imported by the next one.
        cycle: list[str] = error.args[1]
        lines = [where(graph, cycle[i + 1], cycle[i]) for i in range(len(cycle) - 1)]
        pytest.fail("import cycle: " + " <- ".join(cycle) + "\n" + "\n".join(lines))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(graph: grimp.ImportGraph, layer: str) -> None:
    """agents imports nothing of jobs or bot, jobs nothing of bot, and none of them the sandbox."""
    wrong = [
        where(graph, importer, imported)
        for importer in sorted(graph.find_descendants(layer) | {layer})
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if imported.split(".")[0] in FORBIDDEN[layer] and (importer, imported) not in ALLOWED
    ]
    assert wrong == []
