"""Undo for what a skill changes directly, without a run ("/task delete 3", "Ana's number is …"): the skill hands over
the restore that puts it back, and it goes on the thread's undo log, so "undo that" and the Undo button run it as they
run a run's compensations."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from agents.skill_context import SkillContext
from memory.undo_log import Undoable, UndoStep


def offer_undo(ctx: SkillContext, summary: str, capability: str, args: dict[str, Any] | None) -> None:
    """SUMMARY was just done; CAPABILITY with ARGS (a restore) undoes it. ARGS None: it changed nothing to undo."""
    if ctx.undo is None or args is None:
        return
    # the same change told twice (a retried job) is one entry; two changes in one request are two
    digest = hashlib.sha256(json.dumps([capability, args], sort_keys=True, default=str).encode()).hexdigest()[:12]
    item = Undoable(id=f"chg-{ctx.trace_id}-{digest}", thread_id=ctx.thread_id, summary=summary,
                    steps=[UndoStep(capability=capability, args=args, rationale=f"Undo: {summary}")],
                    trace_id=ctx.trace_id, created_at=ctx.undo.clock())
    ctx.undo.push(item)
    ctx.events.record(ctx.trace_id, "undo.recorded", actor=ctx.actor, undo_id=item.id, capability=capability, summary=summary)
