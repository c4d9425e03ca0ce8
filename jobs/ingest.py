"""Background jobs that fill and trim semantic memory: one file per job, conversation turns, retention."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rq import get_current_job

from bot.messages import Inbound
from jobs.runtime import Runtime, runtime_for
from memory.ingest import Ingestor
from memory.retention import apply_retention
from memory.workspaces import Workspaces

log = logging.getLogger("deputy.memory")


def _runtime() -> Runtime:
    job = get_current_job()
    if job is None:
        raise RuntimeError("job functions run inside an RQ worker")
    return runtime_for(job.connection)


def ingest_file(payload: dict[str, Any]) -> dict[str, Any]:
    """Ingest one file. A file that cannot be read is reported (event + result), not retried."""
    rt = _runtime()
    if rt.memory is None:
        raise RuntimeError("semantic memory is not configured in this worker")
    workspace = str(payload.get("workspace") or rt.settings.workspace)
    trace_id = str(payload["trace_id"])
    path = Path(payload["path"])
    result = Ingestor(rt.memory.store, workspace).file(path, project=str(payload.get("project") or "inbox"),
                                                      trust="operator" if payload.get("trusted") else "untrusted")
    kind = "memory.ingested" if result.ok else "memory.ingest_failed"
    rt.events.record(trace_id, kind, actor="worker", path=str(path), chunks=result.chunks, duplicates=result.duplicates,
                     error=result.error)
    return {"path": str(path), "chunks": result.chunks, "duplicates": result.duplicates, "error": result.error}


def remember_turn(rt: Runtime, inbound: Inbound, trace_id: str) -> None:
    """Keep the operator's message in memory when its channel is opted in (INGEST_CONVERSATIONS)."""
    channels = {c.strip() for c in rt.settings.ingest_conversations.split(",") if c.strip()}
    if rt.memory is None or inbound.channel not in channels or inbound.text.lstrip().startswith("/"):
        return
    try:
        item = Ingestor(rt.memory.store, rt.settings.workspace).note(
            inbound.text, author=inbound.user_id, source=f"conversation:{inbound.channel}",
            meta={"thread": inbound.thread_id, "trace": trace_id},
        )
    except Exception as err:  # memory must never cost the operator their reply
        log.warning("conversation turn not remembered: %s", err)
        rt.events.record(trace_id, "memory.ingest_failed", actor="worker", error=f"{type(err).__name__}: {err}"[:300])
        return
    rt.events.record(trace_id, "memory.ingested", actor="worker", source=item.source, id=item.id)


def sweep_retention(payload: dict[str, Any]) -> dict[str, Any]:
    """Periodic: delete memories past their project's retention_days, from every backend."""
    rt = _runtime()
    if rt.memory is None:
        return {"deleted": {}}
    workspace = str(payload.get("workspace") or rt.settings.workspace)
    deleted = apply_retention(rt.memory.backends, Workspaces(rt.redis), workspace, rt.events)
    return {"deleted": deleted}
