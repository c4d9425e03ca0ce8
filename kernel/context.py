"""Values that hold for one `with` block and whatever it calls: the charge a model call is billed to,
the runtime a job works with."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, TypeVar

T = TypeVar("T")


@contextmanager
def bound(var: ContextVar[T], value: T) -> Iterator[T]:
    """Set `var` to `value` inside the block, and back to what it was after it, even on error."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)
