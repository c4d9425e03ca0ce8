"""References between a plan's steps: "${steps.N.field}" in a step's arguments is step N's output, filled in
just before the step runs."""
from __future__ import annotations

import re
from typing import Any, Mapping

from agents.plan import StepResult

REF = re.compile(r"\$\{steps\.(\d+)((?:\.[\w-]+)+)\}")


class UnresolvedReference(ValueError):
    pass


def resolve(value: Any, results: Mapping[int, StepResult]) -> Any:
    """Replace "${steps.N.a.b}" with that value from step N's output."""
    if isinstance(value, str):
        whole = REF.fullmatch(value)
        if whole:
            return _lookup(whole, results)
        return REF.sub(lambda m: str(_lookup(m, results)), value)
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    return value


def resolved_or_as_written(value: dict[str, Any], results: Mapping[int, StepResult]) -> dict[str, Any]:
    """The arguments a done step ran with, for reporting on it: as written where a reference no longer resolves."""
    try:
        return resolve(value, results)
    except UnresolvedReference:
        return value


def _lookup(match: re.Match[str], results: Mapping[int, StepResult]) -> Any:
    index = int(match.group(1))
    done = results.get(index)
    if done is None or done.output is None:
        raise UnresolvedReference(f"step {index + 1} has no result yet")
    value: Any = done.output
    for part in match.group(2).strip(".").split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise UnresolvedReference(f"step {index + 1}'s result has no {match.group(2).strip('.')}") from None
    return value
