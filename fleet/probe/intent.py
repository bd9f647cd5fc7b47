"""What a probe is about to create, written down before it sends, so that nothing outlives it.

A create is a record before it is a call: before each ``createServerInstances`` the probe writes
(whole, then renamed into place) which names it sends, where, and when; once NCP answers, the
instance numbers too. A probe killed part-way leaves the file behind; the next probe, whatever
its mode, reads it, finds those servers by number and by name, removes the ones that carry that
run's probe marker or a recorded number, and deletes the file only once they are gone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fleet.errors import ConfigError

__all__ = ["Intent", "clear_intent", "read_intent", "write_intent"]


@dataclass(frozen=True, slots=True)
class Intent:
    """The servers one probe run may have made: where, under which names, with which numbers."""

    endpoint: str
    run: str
    region: str  # '' : NCP's default region
    names: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    sent_at: float = 0.0  # our wall clock when the last create left (epoch seconds)
    window: float = 300.0  # seconds after it in which a create whose answer was lost may show
    unanswered: bool = False  # the last create went out and no answer was recorded

    def sending(self, name: str, at: float) -> Intent:
        """Return the intent with one more create going out now under ``name``."""
        names = self.names if name in self.names else (*self.names, name)
        return replace(self, names=names, sent_at=at, unanswered=True)

    def answered(self, numbers: tuple[str, ...] = ()) -> Intent:
        """Return the intent with the create answered: its numbers (none when refused)."""
        merged = tuple(dict.fromkeys((*self.numbers, *numbers)))
        return replace(self, numbers=merged, unanswered=False)

    def document(self) -> dict[str, Any]:
        """Return the intent as its JSON object."""
        return {
            "endpoint": self.endpoint,
            "run": self.run,
            "region": self.region,
            "names": list(self.names),
            "numbers": list(self.numbers),
            "sent_at": self.sent_at,
            "window": self.window,
            "unanswered": self.unanswered,
        }

    @classmethod
    def from_document(cls, data: Any) -> Intent:
        """Read an intent's JSON object; ValueError when it is not one."""
        try:
            intent = cls(
                str(data["endpoint"]),
                str(data["run"]),
                str(data["region"]),
                tuple(str(n) for n in data["names"]),
                tuple(str(n) for n in data["numbers"]),
                float(data["sent_at"]),
                float(data["window"]),
                bool(data["unanswered"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a probe's record of its creates ({exc!r})") from None
        if not (math.isfinite(intent.sent_at) and math.isfinite(intent.window)):
            raise ValueError("not a probe's record of its creates (times not finite)")
        return intent


def read_intent(path: str | Path) -> Intent | None:
    """Return the creates an earlier probe recorded, or None when it left no record."""
    target = Path(path)
    if not target.exists():
        return None
    try:
        return Intent.from_document(json.loads(target.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{target}: {exc}. It lists servers an earlier fleet probe may have left: look them "
            "up, remove them, then delete the file"
        ) from None


def write_intent(path: str | Path, intent: Intent) -> None:
    """Record the intent, whole or not at all (a temporary file, then a rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(intent.document(), indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)


def clear_intent(path: str | Path) -> None:
    """Delete the record once everything in it is gone."""
    Path(path).unlink(missing_ok=True)
