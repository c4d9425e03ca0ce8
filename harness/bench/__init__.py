"""Benchmarks (`deputy bench NAME`) and evaluations (`deputy eval NAME`): each prints a table, or
with --json one JSON object. Each entry parses its own options from the arguments it is given."""
from __future__ import annotations

import json
from typing import Any, Callable

from kernel.settings import Settings

# (settings, its own argv) -> one flat-ish JSON-able dict of figures
Measure = Callable[[Settings, list[str]], dict[str, Any]]


def _lazy(module: str, func: str) -> Measure:
    def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
        import importlib

        return getattr(importlib.import_module(module), func)(settings, argv)

    return run


# The one list of benchmarks.
BENCHES: dict[str, Measure] = {
    "gateway": _lazy("harness.bench.gateway", "run"),
    "queue": _lazy("harness.bench.queue", "run"),
    "load": _lazy("harness.bench.load", "run"),
    "agents": _lazy("harness.bench.agents", "run"),
    "connectors": _lazy("harness.bench.connectors", "run"),
    "slack": _lazy("harness.bench.slack", "run"),
    "memory": _lazy("harness.bench.memory", "run"),
    "intents": _lazy("harness.bench.intents", "run"),
}

# The one list of evaluations.
EVALS: dict[str, Measure] = {
    "memory": _lazy("harness.bench.memory_eval", "run"),
    "intents": _lazy("harness.bench.intents_eval", "run"),
    "injection-fp": _lazy("harness.bench.injection_fp", "run"),
}


def print_table(title: str, result: dict[str, Any]) -> str:
    """A readable two-column table; nested dicts become indented rows."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}{key}" if not prefix else f"{prefix}.{key}", inner)
        elif isinstance(value, float):
            rows.append((prefix, f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"))
        elif isinstance(value, (list, tuple)):
            rows.append((prefix, json.dumps(value)))
        else:
            rows.append((prefix, str(value)))

    walk("", result)
    width = max((len(k) for k, _ in rows), default=10)
    lines = [title, "-" * (width + 20)]
    lines += [f"{k:<{width}}  {v:>16}" for k, v in rows]
    return "\n".join(lines)
