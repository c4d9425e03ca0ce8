"""Jobs that only exist to be measured."""
from __future__ import annotations

from typing import Any


def noop(payload: dict[str, Any]) -> dict[str, Any]:
    return payload
