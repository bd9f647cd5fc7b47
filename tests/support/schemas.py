"""The JSON Schemas shipped in schemas/, and a check that a command's document keeps to one."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@cache
def validator(name: str) -> Draft202012Validator:
    """Return the validator of ``schemas/<name>.schema.json``, the schema itself checked first."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def conforms(name: str, text: str) -> dict[str, Any]:
    """Parse a command's stdout as one JSON document, assert it keeps to the schema, return it."""
    document: dict[str, Any] = json.loads(text)
    problems = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in validator(name).iter_errors(document)
    ]
    assert not problems, f"not a {name} document: " + "; ".join(problems)
    return document
