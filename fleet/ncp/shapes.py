"""NCP's answers read as data: each field says where NCP answers it; one reader builds any shape.

A shape is a frozen dataclass whose fields carry ``field(metadata=answer(name, ...))``: the field of
NCP's record it comes from, whether that is one of NCP's common codes (``{"code", "codeName"}``, of
which the code is kept), how the text is read (``ServerStatus``, ``bool`` ...) and what a missing
field reads as. ``Shape.from_answer`` is the one constructor every shape shares, so a new field of
an answer is one declaration, never another hand-written constructor. The record itself is kept
whole in ``raw``: nothing NCP returned is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Self

__all__ = ["Answered", "Shape", "answer"]


@dataclass(frozen=True, slots=True)
class Answered:
    """Where one field of a shape is in NCP's record, and how it is read."""

    name: str  # the field of NCP's record
    code: bool = False  # one of NCP's common codes: its ``code`` is the value
    read: Callable[[Any], Any] = str  # what the answered value becomes
    missing: Any = ""  # what an absent (or null) field reads as, before ``read``

    def value(self, record: Mapping[str, Any]) -> Any:
        """Return this field's value, read from one record of NCP's answer."""
        value = record.get(self.name)
        if self.code:
            value = value.get("code") if isinstance(value, Mapping) else None
        if value is None or value == "":
            value = self.missing
        return self.read(value)


def answer(
    name: str, *, code: bool = False, read: Callable[[Any], Any] = str, missing: Any = ""
) -> dict[str, Answered]:
    """Return a field's metadata saying where NCP answers it: ``field(metadata=answer(...))``."""
    return {"ncp": Answered(name, code, read, missing)}


class Shape:
    """A record NCP answers, read by its fields' declarations (see the module's docstring)."""

    __slots__ = ()

    @classmethod
    def from_answer(cls, record: Mapping[str, Any], **given: Any) -> Self:
        """Build one from a record of NCP's answer; ``given`` sets fields NCP does not answer."""
        values = {
            f.name: f.metadata["ncp"].value(record)
            for f in fields(cls)  # type: ignore[arg-type]
            if "ncp" in f.metadata and f.name not in given
        }
        return cls(**values, **given)
