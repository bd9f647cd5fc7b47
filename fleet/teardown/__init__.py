"""Taking a rollout back down: only what it can prove it made, each stopped, terminated, gone.

- ``scope``: the teardown's plan, the dry run's too: what it takes (recorded instances, lost
  creates carrying our marker), what protection keeps, what it looks up, and what it leaves
  alone, each by ``ownership.judge``.
- ``extras``: what the creates made beside the servers (public IPs, extra disks), found before
  anything is stopped and returned once the servers they were made with are gone.
- ``takedown``: the ``Teardown`` itself: the intent first, then round after round until every
  target is gone by the one rule (``fleet.states.is_gone``).
"""

from .extras import ExtrasReport, ExtraStep, Made, extra_step, extras_of, return_extras
from .scope import (
    ADOPTED_LEFT,
    OTHER_RUN,
    LeftAlone,
    TeardownScope,
    TeardownTarget,
    lost_create,
    teardown_targets,
)
from .takedown import (
    NOT_LISTED,
    Teardown,
    TeardownReport,
    Tell,
    teardown,
)

__all__ = [
    "ADOPTED_LEFT",
    "NOT_LISTED",
    "OTHER_RUN",
    "ExtraStep",
    "ExtrasReport",
    "LeftAlone",
    "Made",
    "Teardown",
    "TeardownReport",
    "TeardownScope",
    "TeardownTarget",
    "Tell",
    "extra_step",
    "extras_of",
    "lost_create",
    "return_extras",
    "teardown",
    "teardown_targets",
]
