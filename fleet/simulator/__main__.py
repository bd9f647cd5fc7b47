"""``python -m fleet.simulator``: run the local NCP simulator (see ``fleet.simulator.server``)."""

from __future__ import annotations

from fleet.simulator.server import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
