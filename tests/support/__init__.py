"""What the three test levels share: clocks, keys, the simulator, the engine, PostgreSQL, Prefect.

Its fixtures are registered once, by ``pytest_plugins`` in tests/conftest.py; test modules import
only its plain helpers and constants (see tests/README.md).
"""
