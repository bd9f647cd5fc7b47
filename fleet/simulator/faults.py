"""Which fault a call gets: rules posted on demand first, then a seeded draw for creates.

A rule ``{"action", "fault", "times": 1, "serverName": optional, "regionCode": optional}``
matches a call of that action whose ``serverName`` parameter is exactly the rule's (when the rule
names one) and whose region (its ``regionCode``, else the first region) is the rule's (when it
names one). The first matching rule wins and is consumed as it fires. ``late_commit`` is a
create's fault only.

Every create that passes validation takes one draw from the seeded RNG, whether or not a rule
fires for it, so a rule for one server never shifts the random faults of the others.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fleet.simulator.config import FAULT_KINDS, SimulatorConfig

__all__ = ["CREATE", "FaultRule", "Faults", "parse_rules"]

CREATE: Final = "createServerInstances"
_RULE_KEYS: Final = frozenset({"action", "fault", "times", "serverName", "regionCode"})


@dataclass(slots=True)
class FaultRule:
    """A fault to play on the next ``times`` calls that match."""

    action: str
    fault: str
    times: int = 1
    server_name: str | None = None
    region: str | None = None

    def matches(self, action: str, params: Mapping[str, str], region: str) -> bool:
        """Return whether a call of ``action`` acting on ``region`` gets this fault."""
        return (
            self.action == action
            and (self.server_name is None or params.get("serverName") == self.server_name)
            and (self.region is None or self.region == region)
        )

    def public(self) -> dict[str, Any]:
        """Return the rule as the admin API shows it."""
        rule: dict[str, Any] = {"action": self.action, "fault": self.fault, "times": self.times}
        if self.server_name is not None:
            rule["serverName"] = self.server_name
        if self.region is not None:
            rule["regionCode"] = self.region
        return rule


def _parse_rule(item: Any, actions: Collection[str], regions: Collection[str]) -> FaultRule:
    if not isinstance(item, dict):
        raise ValueError(f"a rule is a JSON object, not {item!r}")
    unknown = item.keys() - _RULE_KEYS
    if unknown:
        raise ValueError(f"unknown rule keys: {', '.join(sorted(unknown))}")
    action, fault = item.get("action"), item.get("fault")
    times = item.get("times", 1)
    name, region = item.get("serverName"), item.get("regionCode")
    if not isinstance(action, str) or action not in actions:
        raise ValueError(f"action {action!r} is not an API action of the simulator")
    if not isinstance(fault, str) or fault not in FAULT_KINDS:
        raise ValueError(f"fault {fault!r} is not one of {', '.join(FAULT_KINDS)}")
    if fault in ("late_commit", "never_ready") and action != CREATE:
        raise ValueError(f"{fault} is a fault of {CREATE} only")
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be an integer >= 1, not {times!r}")
    if name is not None and not isinstance(name, str):
        raise ValueError("serverName must be a string")
    if region is not None and region not in regions:
        raise ValueError(f"regionCode {region!r} is not a region of the simulator")
    return FaultRule(action, fault, times, name, region)


def parse_rules(data: Any, actions: Collection[str], regions: Collection[str]) -> list[FaultRule]:
    """Return the rules of a JSON list (or one object); raise ValueError naming a bad one."""
    items = data if isinstance(data, list) else [data]
    return [_parse_rule(item, actions, regions) for item in items]


class Faults:
    """The rules left to play, the seeded draw, and how many of each kind were played."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rules: list[FaultRule] = []
        self.played = dict.fromkeys(FAULT_KINDS, 0)
        self._rng = random.Random(config.seed)

    def reseed(self) -> None:
        """Restart the draw from the configured seed."""
        self._rng = random.Random(self.config.seed)

    def draw(self) -> str | None:
        """Draw the fault (or None) for one valid create from the seeded RNG."""
        u = self._rng.random()
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(self.config, kind)
            if u < edge:
                return kind
        return None

    def match(self, action: str, params: Mapping[str, str], region: str) -> FaultRule | None:
        """Return the first rule that matches the call, without consuming it."""
        return next((r for r in self.rules if r.matches(action, params, region)), None)

    def consume(self, rule: FaultRule) -> None:
        """Count one firing of a rule; drop it when it has fired ``times`` times."""
        rule.times -= 1
        if rule.times <= 0:
            self.rules.remove(rule)

    def count(self, kind: str | None) -> None:
        """Count a fault played."""
        if kind is not None:
            self.played[kind] += 1
