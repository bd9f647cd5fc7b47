"""The library stays Prefect-free: dependencies point one way, flows -> fleet."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_library_and_simulator_does_not_import_prefect() -> None:
    """The library and its simulator load without Prefect; importing it there is a design bug."""
    code = "import sys, fleet, fleet.simulator, fleet.lifecycle;sys.exit('prefect' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
