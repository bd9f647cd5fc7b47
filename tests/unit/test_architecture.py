"""The library stays Prefect-free: dependencies point one way, flows -> fleet."""

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
