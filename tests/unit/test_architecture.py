"""The house rules: which package may import which, no import circles, rooms that stay small."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every module of the library and the simulator, imported in a clean interpreter.
CODE = """
import importlib, pkgutil, sys
import fleet
for module in pkgutil.walk_packages(fleet.__path__, "fleet."):
    importlib.import_module(module.name)
sys.exit("prefect" in sys.modules)
"""


def test_importing_the_library_and_simulator_does_not_import_prefect() -> None:
    """No module of the library or its simulator imports Prefect; that would be a design bug."""
    assert subprocess.run([sys.executable, "-c", CODE], check=False).returncode == 0


# The shape targets of the library and the flows: past these, a room is asking to be split.
MAX_FILE_LINES, MAX_FUNCTION_LINES, MAX_CLASS_LINES = 800, 60, 400
# Rooms allowed past a target, and why.
EXCEPTIONS = {
    # A facade: one short method per operation of the ledger, each one transaction around a
    # function of the modules beside it that holds the SQL. Split, it would be two names for one
    # object (callers cannot tell which half holds a method).
    "fleet/ledger/ledger.py:Ledger",
}


def test_rooms_stay_small() -> None:
    """No file of fleet/ or flows/ passes 800 lines, no function 60, no class 400 (guidance)."""
    root = ROOT
    too_big = []
    for path in sorted([*root.glob("fleet/**/*.py"), *root.glob("flows/**/*.py")]):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(root)
        if source.count("\n") > MAX_FILE_LINES:
            too_big.append(f"{where}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                limit = MAX_FUNCTION_LINES
            elif isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            else:
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit and f"{where}:{node.name}" not in EXCEPTIONS:
                too_big.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    assert not too_big, "\n".join(too_big)


# The library's base: plain data and the one table of errors, which every part may import.
BASE = ("fleet.errors", "fleet.states", "fleet.config", "fleet.planned", "fleet.options")
# What the phases share: the create marker and the rule of which servers are a rollout's.
SHARED = ("fleet.ownership",)
# Package -> the modules (and packages) of ours it may import besides its own and the base. The
# phases run in this order, and each may use only what comes before it: a name in this table
# is the whole of what a phase may reach.
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    # NCP's API and its wire: nothing of the engine, the ledger or the inventory.
    "fleet.ncp": (),
    # The ledger records; it knows nothing of NCP's wire or of the engine.
    "fleet.ledger": (),
    # The inventory reads files into specs, by the request fields' table.
    "fleet.inventory": ("fleet.ncp.parameters",),
    # The simulator plays NCP for any client: it shares the fields' table and the signature
    # (to check it), never our client.
    "fleet.simulator": ("fleet.ncp.parameters", "fleet.ncp.signing"),
    # The marker and the rule of ownership: what NCP lists, against what the ledger recorded.
    "fleet.ownership": ("fleet.ncp", "fleet.ledger"),
    # Before creating: the inventory against the ledger, NCP and its references.
    "fleet.plan": ("fleet.ncp", "fleet.ledger", *SHARED),
    # Creating: claims, sends, settles.
    "fleet.create": ("fleet.ncp", "fleet.ledger", *SHARED),
    # After creating: polling, waiting for RUN, addresses.
    "fleet.watch": ("fleet.ncp", "fleet.ledger", *SHARED),
    # Taking down: what the plan knows of the rollout's servers, settling unknown creates.
    "fleet.teardown": (
        "fleet.ncp",
        "fleet.ledger",
        *SHARED,
        "fleet.plan",
        "fleet.create",
        "fleet.watch",
    ),
    # Changing what exists, and finishing what earlier runs began: every phase before.
    "fleet.reshape": (
        "fleet.ncp",
        "fleet.ledger",
        *SHARED,
        "fleet.plan",
        "fleet.create",
        "fleet.watch",
        "fleet.teardown",
    ),
    # What a run did, read off the ledger.
    "fleet.report": ("fleet.ledger",),
    # The probe speaks NCP through the client only, and knows no ledger and no engine: the
    # ownership rule (its marker), the polling loop, a takedown's steps and its own options.
    "fleet.probe": ("fleet.ncp", *SHARED, "fleet.watch.polling", "fleet.watch.steps"),
}
# At most this many modules directly in a package's folder: past it, the folder hides its plan.
MOST_MODULES = {"fleet": 8, "flows": 16}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted([*ROOT.glob("fleet/**/*.py"), *ROOT.glob("flows/**/*.py")]):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def _imports(name: str, modules: dict[str, tuple[Path, bool]]) -> set[str]:
    """Every module of ours that ``name`` imports: at the top, under TYPE_CHECKING, in a body."""
    path, package = modules[name]
    here = name if package else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in modules else target)
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, modules) for name in modules}


def test_each_package_imports_only_what_it_may() -> None:
    """fleet.ncp, fleet.ledger, the inventory and the simulator keep to their own and the base."""
    wrong = []
    for name, imported in _graph().items():
        if name in BASE:
            wrong += [f"{name} -> {m}" for m in imported if m not in BASE]
            continue
        if name.startswith("fleet.") and any(m.startswith("flows") for m in imported):
            wrong.append(f"{name} -> flows")
        package = next((p for p in MAY_IMPORT if name == p or name.startswith(p + ".")), None)
        if package is None:
            continue
        allowed = (package, *BASE, *MAY_IMPORT[package])
        wrong += [
            f"{name} -> {m}"
            for m in imported
            if not any(m == a or m.startswith(a + ".") for a in allowed)
        ]
    assert not wrong, "\n".join(sorted(wrong))


def test_the_folders_read_as_the_lifecycle() -> None:
    """fleet/ holds at most 8 modules (the rest in phase packages), flows/ at most 16."""
    crowded = []
    for folder, most in MOST_MODULES.items():
        modules = sorted(p.name for p in (ROOT / folder).glob("*.py"))
        if len(modules) > most:
            crowded.append(f"{folder}/: {len(modules)} modules: {', '.join(modules)}")
    assert not crowded, "\n".join(crowded)


def test_every_module_the_architecture_page_names_exists() -> None:
    """docs/architecture.md's layout names only modules and folders that are there."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layout = page.split("```", 2)[1]
    folder: list[str] = []
    missing = []
    for line in layout.splitlines():
        match = re.match(r"^( *)([\w.]+(?:/|\.py))(?:,|\s|$)", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        name = match.group(2)
        folder = folder[:depth]
        path = ROOT.joinpath(*folder, name)
        if not path.exists():
            missing.append(str(path.relative_to(ROOT)))
        if name.endswith("/"):
            folder.append(name.rstrip("/"))
    assert not missing, "named in docs/architecture.md, not in the tree: " + ", ".join(missing)


def test_no_import_circles() -> None:
    """No module of fleet/ or flows/ reaches itself through its imports (TYPE_CHECKING counted)."""
    graph = _graph()
    circles = []
    for start in graph:
        seen: set[str] = set()
        todo: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        while todo:
            name, path = todo.pop()
            for nxt in graph[name]:
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append((nxt, (*path, nxt)))
    assert not circles, "\n".join(sorted(circles)[:10])


def test_the_async_ledger_has_every_method_of_the_ledger() -> None:
    """AsyncLedger mirrors Ledger: the same public method names, as httpx's two clients do."""
    from fleet.ledger import AsyncLedger, Ledger

    public = {n for n in dir(Ledger) if not n.startswith("_") and callable(getattr(Ledger, n))}
    missing = public - set(vars(AsyncLedger)) - {"close"}  # closing the ledger is its owner's
    assert not missing, sorted(missing)


def test_no_public_class_name_is_defined_twice() -> None:
    """One name per idea: a public class of fleet/ or flows/ is defined in one module only."""
    where: dict[str, list[str]] = {}
    for name, (path, _) in _modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(name)
    twice = {cls: mods for cls, mods in where.items() if len(mods) > 1}
    assert not twice, "\n".join(f"{cls}: {', '.join(mods)}" for cls, mods in sorted(twice.items()))


def test_the_flows_use_the_library_through_its_public_api() -> None:
    """flows/ imports the library from ``fleet`` (its public API) or the simulator's package."""
    reached = []
    for name, (path, _) in _modules().items():
        if not name.startswith("flows"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level:
                targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            reached += [
                f"{name} -> {t}"
                for t in targets
                if t.startswith("fleet.") and not t.startswith("fleet.simulator")
            ]
    assert not reached, "\n".join(sorted(reached))


def test_the_flows_never_import_the_command_line() -> None:
    """flows/cli/ imports the flows; no flow imports it back (``python -m flows`` aside)."""
    back = sorted(
        f"{name} -> {m}"
        for name, imported in _graph().items()
        if name.startswith("flows")
        and not name.startswith("flows.cli")
        and name != "flows.__main__"
        for m in imported
        if m.startswith("flows.cli")
    )
    assert not back, "\n".join(back)
