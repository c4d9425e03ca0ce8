"""`deputy bench`, `deputy eval` and `deputy prove`: they run the harness package, which lives in a
source checkout beside the product (with the local servers it measures against) and is not installed
with it. From a checkout they work however `deputy` was started; elsewhere they say how to get one."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

from kernel.settings import Settings

SOURCE_ROOT = Path(__file__).resolve().parents[1]
NEEDS_CHECKOUT = (
    "deputy {command} runs from a source checkout of Deputy, which has the harness it needs "
    "(harness/, with the test servers): clone the repository, run ./scripts/test once (or "
    "`.venv/bin/pip install -e '.[test]'`), then `.venv/bin/deputy {command} …` from there."
)


def harness(module: str) -> ModuleType | None:
    """harness.<module>, from the checkout this `deputy` was installed from; None when there is none."""
    name = f"harness.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name not in ("harness", name):
            raise  # a missing test extra inside the harness: its own message is the right one
    if not (SOURCE_ROOT / "harness").is_dir():
        return None
    # an editable install maps only the product's packages; the harness sits beside them
    sys.path.insert(0, str(SOURCE_ROOT))
    return importlib.import_module(name)


def _unavailable(command: str) -> int:
    print(NEEDS_CHECKOUT.format(command=command), file=sys.stderr)
    return 2


def measure_args(registry: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        bench = harness("bench")
        choices = sorted(getattr(bench, registry)) if bench else None
        parser.add_argument("what", choices=choices, help="what to measure")
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        parser.add_argument("options", nargs=argparse.REMAINDER, help="options of that measurement (see NAME --help)")

    return add


def measure(registry: str) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        bench = harness("bench")
        if bench is None:
            return _unavailable(args.command)
        options = [o for o in args.options if o != "--json"]
        as_json = args.json or "--json" in args.options
        result = getattr(bench, registry)[args.what](settings, options)
        print(json.dumps(result) if as_json else bench.print_table(f"deputy {args.command} {args.what}", result))
        return 0

    return run


def prove_args(parser: argparse.ArgumentParser) -> None:
    runner = harness("prove.runner")
    if runner is not None:
        runner.add_arguments(parser)
    else:
        parser.add_argument("rest", nargs=argparse.REMAINDER)


def run_prove(args: argparse.Namespace, settings: Settings) -> int:
    runner = harness("prove.runner")
    if runner is None:
        return _unavailable("prove")
    return int(runner.main(args, settings))
