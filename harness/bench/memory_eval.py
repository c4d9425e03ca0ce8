"""`deputy eval memory --locomo FILE`: evidence recall of semantic memory on LoCoMo conversations.

Each conversation goes into a fresh embedded store, one memory per turn (speaker, text, shared
photo caption, session date, and the turns just before and after it); each question is a query.
A question counts at k when any of its top-k turns is in its evidence list (`recall_at_k`);
`evidence_recall_at_k` is the share of all evidence turns found, the LoCoMo paper's own measure."""
from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from kernel.settings import Settings

KS = (5, 10, 25)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
SESSION = re.compile(r"^session_(\d+)$")


def session_time(raw: str) -> float:
    """LoCoMo's "1:56 pm on 8 May, 2023" as a timestamp (0 when unreadable)."""
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(raw.strip(), fmt).timestamp()
        except ValueError:
            continue
    return 0.0


def _line(turn: dict[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn.get('text', '')}"
    if turn.get("blip_caption"):
        text += f" [shares a photo: {turn['blip_caption']}]"
    return text


def turn_text(turn: dict[str, Any], date: str, previous: dict[str, Any] | None, following: dict[str, Any] | None = None) -> str:
    text = _line(turn)
    if previous is not None:
        # the turn answered is often what makes a short reply findable ("Yes, last week!")
        text = f"{_line(previous)}\n{text}"
    if following is not None:
        text = f"{text}\n{_line(following)}"
    return f"{text}\n({date})" if date else text


def conversation_items(sample: dict[str, Any], workspace: str, context: bool = True, dates: bool = True,
                       following: bool = False) -> list[Any]:
    from memory.store import MemoryItem

    conv = sample["conversation"]
    sessions = sorted((int(m.group(1)), key) for key in conv if (m := SESSION.match(key)) and isinstance(conv[key], list))
    items = []
    for number, key in sessions:
        raw_date = str(conv.get(f"{key}_date_time", ""))
        when = session_time(raw_date)
        date = raw_date.split(" on ")[-1] if dates and raw_date else ""
        turns = conv[key]
        for i, turn in enumerate(turns):
            previous = turns[i - 1] if context and i > 0 else None
            after = turns[i + 1] if following and i + 1 < len(turns) else None
            items.append(MemoryItem(id=str(turn["dia_id"]), workspace=workspace, text=turn_text(turn, date, previous, after),
                                    project="locomo", source=f"session:{number}", author=str(turn["speaker"]),
                                    created_at=when, trust="untrusted"))
    return items


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deputy eval memory", description=__doc__)
    parser.add_argument("--locomo", type=Path, help="LoCoMo JSON (default ../shared/eval/locomo/locomo_dev.json when present)")
    parser.add_argument("--mode", choices=("hybrid", "vector", "keyword"), default="hybrid")
    parser.add_argument("--conversations", type=int, default=0, help="only the first N conversations (0: all)")
    parser.add_argument("--window", choices=("none", "previous", "both"), default="both",
                        help="neighbouring turns indexed with each turn (default both: the one before and the one after)")
    parser.add_argument("--no-dates", action="store_true", help="leave the session date out of the indexed text")
    parser.add_argument("--keyword-weight", type=float, help="weight of the keyword ranking (default: the store's)")
    parser.add_argument("--fusion", choices=("rrf", "relative"), help="how rankings are fused (default: the store's)")
    parser.add_argument("--runtime", choices=("onnx", "numpy"), default="onnx",
                        help="the sentence model's runtime: onnxruntime int8 (the product's) or the numpy reference")
    parser.add_argument("--cache", type=Path, help="embedding cache file (default DATA_DIR/eval-vectors-RUNTIME.sqlite3)")
    return parser.parse_args(argv)


def default_locomo() -> Path | None:
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "eval" / "locomo" / "locomo_dev.json"
        if candidate.exists():
            return candidate
    return None


def run(settings: Settings, argv: list[str]) -> dict[str, Any]:
    from memory.embedding_cache import CachedEmbedder
    from memory.embeddings import MiniLmEmbedder

    args = parse(argv)
    path = args.locomo or default_locomo()
    if path is None or not path.exists():
        raise SystemExit(f"deputy eval memory: no LoCoMo file at {path or '../shared/eval/locomo/locomo_dev.json'}; pass --locomo FILE")
    samples = json.loads(path.read_text())
    if args.conversations:
        samples = samples[:args.conversations]
    model = MiniLmEmbedder(cache_dir=settings.intent.model_cache_dir, runtime=args.runtime)
    # one cache file per runtime: their vectors differ a little, and the eval measures the one asked for
    cache = args.cache or settings.data_dir / f"eval-vectors-{args.runtime}.sqlite3"
    embedder = CachedEmbedder(model, cache)
    try:
        result = evaluate(samples, embedder, args)
    finally:
        embedder.close()
    return result | {"runtime": args.runtime, "file": str(path)}


def evaluate(samples: list[dict[str, Any]], embedder: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Recall of `samples` (LoCoMo conversations) with `embedder`, as `run` reports it."""
    from memory.sqlite_store import SqliteStore

    started = time.perf_counter()
    found_any: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    found_share: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    asked: dict[str, int] = defaultdict(int)
    skipped = turns = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n, sample in enumerate(samples):
            workspace = f"locomo{n}"
            tuning = {k: v for k, v in (("keyword_weight", args.keyword_weight), ("fusion", args.fusion)) if v is not None}
            with SqliteStore(Path(tmp) / f"{workspace}.sqlite3", embedder, **tuning) as store:
                items = conversation_items(sample, workspace, context=args.window != "none", dates=not args.no_dates,
                                           following=args.window == "both")
                turns += len(items)
                for start in range(0, len(items), 256):
                    store.add(items[start:start + 256])
                for qa in sample["qa"]:
                    evidence = {str(e) for e in qa.get("evidence") or [] if e}
                    if not evidence:
                        skipped += 1
                        continue
                    hits = store.search(workspace, str(qa["question"]), limit=max(KS), mode=args.mode)
                    ranked = [h.item.id for h in hits]
                    category = CATEGORIES.get(int(qa.get("category", 0)), str(qa.get("category")))
                    for bucket in (category, "overall"):
                        asked[bucket] += 1
                        for k in KS:
                            top = set(ranked[:k])
                            found_any[bucket][k] += bool(top & evidence)
                            found_share[bucket][k] += len(top & evidence) / len(evidence)

    def pct(x: float, n: int) -> float:
        return round(100.0 * x / n, 1) if n else 0.0

    overall = asked["overall"]
    result: dict[str, Any] = {f"recall_at_{k}": pct(found_any["overall"][k], overall) for k in KS}
    result.update({f"evidence_recall_at_{k}": pct(found_share["overall"][k], overall) for k in KS})
    result["by_category"] = {
        name: {"questions": asked[name], **{f"recall_at_{k}": pct(found_any[name][k], asked[name]) for k in KS}}
        for name in CATEGORIES.values() if asked[name]
    }
    result.update(questions=overall, skipped_without_evidence=skipped, conversations=len(samples), turns=turns,
                  mode=args.mode, window=args.window, seconds=round(time.perf_counter() - started, 1))
    return result
