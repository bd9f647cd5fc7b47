"""The house rules: the library stays Prefect-free (flows -> fleet), and its rooms stay small."""

from __future__ import annotations

import subprocess
import sys

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
MAX_FILE_LINES, MAX_FUNCTION_LINES, MAX_CLASS_LINES = 500, 60, 250


def test_rooms_stay_small() -> None:
    """No file of fleet/ or flows/ passes 500 lines, no function 60, no class 250."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
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
            if lines > limit:
                too_big.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    assert not too_big, "\n".join(too_big)
