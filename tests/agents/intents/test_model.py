"""The operator's intents file is watched: a new intent is recognised after a retrain, a broken file
keeps the last good intents and says why."""
from __future__ import annotations

import os
from pathlib import Path

from agents.intents.features import MemoEmbedder
from agents.intents.model import IntentWatcher

INVOICE = """\
intents:
  - name: invoice_status
    description: Check whether an invoice was paid
    playbook: invoice_status
    examples:
      - has acme paid invoice 42
      - is the march invoice paid yet
      - did the client pay the last invoice
      - which invoices are still unpaid
      - check if invoice 17 was settled
"""


def _touch_later(path: Path) -> None:
    # some filesystems keep whole-second mtimes; make the change visible regardless
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))


def test_a_new_intent_is_recognised_after_retrain(tmp_path: Path, embedder: MemoEmbedder):
    path = tmp_path / "intents.yaml"
    watcher = IntentWatcher(path, embedder, check_every_s=0)
    before = watcher.current()
    assert "invoice_status" not in before.registry
    assert before.classifier.rank("has bob paid invoice 7 yet").confidence < 0.4

    path.write_text(INVOICE)
    after = watcher.current()
    assert after is not before and "invoice_status" in after.registry
    ranking = after.classifier.rank("has bob paid invoice 7 yet")
    assert ranking.best == "invoice_status" and ranking.confidence >= 0.4
    assert after.train_s > 0
    # unchanged file: the same trained model, no retrain
    assert watcher.current() is after


def test_a_broken_file_keeps_the_last_good_intents(tmp_path: Path, embedder: MemoEmbedder):
    path = tmp_path / "intents.yaml"
    path.write_text(INVOICE)
    watcher = IntentWatcher(path, embedder, check_every_s=0)
    good = watcher.current()
    path.write_text(INVOICE.replace("playbook: invoice_status", "playbook: invoice_status\n    skill: help"))
    _touch_later(path)
    assert watcher.current() is good
    assert "exactly one of skill" in watcher.last_error and str(path) in watcher.last_error
    path.write_text(INVOICE + "    suggest: false\n")
    _touch_later(path)
    assert watcher.current().registry.get("invoice_status").suggest is False
    assert watcher.last_error == ""


def test_changes_are_looked_for_at_most_every_few_seconds(tmp_path: Path, embedder: MemoEmbedder):
    path = tmp_path / "intents.yaml"
    now = [1_000.0]
    watcher = IntentWatcher(path, embedder, check_every_s=5, clock=lambda: now[0])
    first = watcher.current()
    path.write_text(INVOICE)
    now[0] += 4.9
    assert watcher.current() is first  # the file is not looked at yet
    now[0] += 0.1
    later = watcher.current()
    assert later is not first and "invoice_status" in later.registry
