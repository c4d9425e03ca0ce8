"""`deputy prepare`: everything a first message needs, made at install time (scripts/up, scripts/test
and the Dockerfile run it after pip install) instead of on the first message. Each step is skipped
when its files are there already, so running it again is cheap; two at once prepare each file once."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Callable

from agents.intents.recognizers import prepare_intents
from kernel.settings import Settings
from memory.preparation import Prepared, prepare_models


def _sentence_models(settings: Settings) -> list[Prepared]:
    intent = settings.intent
    return prepare_models(intent.model_cache_dir, mpnet=intent.embeddings and intent.mpnet)


def _intent_classifier(settings: Settings) -> list[Prepared]:
    # the classifier a worker reads back instead of training on its first free-text message
    return [prepare_intents(settings)]


# The one list of what is prepared, in order.
STEPS: list[Callable[[Settings], list[Prepared]]] = [_sentence_models, _intent_classifier]


def prepare_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def run_prepare(args: argparse.Namespace, settings: Settings) -> int:
    done: list[Prepared] = []
    try:
        for step in STEPS:
            for prepared in step(settings):
                done.append(prepared)
                if not args.json:
                    print(prepared.line(), flush=True)
    except OSError as err:
        print(f"deputy prepare: could not write the model files ({err}); set MODEL_CACHE_DIR to a folder this user "
              f"can write (now {settings.intent.model_cache_dir})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"model_cache_dir": str(settings.intent.model_cache_dir),
                          "prepared": [asdict(p) | {"path": str(p.path) if p.path else None, "seconds": round(p.seconds, 2)}
                                       for p in done]}, indent=2))
    return 0
