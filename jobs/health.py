"""A job that only answers: proof that a worker takes and runs work (`deputy bench queue` measures it)."""
from __future__ import annotations

from typing import Any


def ping(payload: dict[str, Any]) -> dict[str, Any]:
    return payload
