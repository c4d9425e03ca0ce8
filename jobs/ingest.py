"""Background jobs that fill and trim semantic memory: one file per job, conversation turns, retention."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kernel.messages import Inbound
from kernel.settings import Settings
from jobs.runtime import Runtime, current_runtime
from memory.ingest import Ingestor, Limits
from memory.retention import apply_retention
from memory.workspaces import Workspaces

log = logging.getLogger("deputy.memory")


def ingest_limits(settings: Settings) -> Limits:
    return Limits(max_file_bytes=int(settings.ingest.max_file_mb * 2**20), max_pdf_pages=settings.ingest.max_pdf_pages,
                  pdf_timeout_s=settings.ingest.pdf_timeout_s)


EVENT_KINDS = {"ingested": "memory.ingested", "skipped": "memory.ingest_skipped", "failed": "memory.ingest_failed"}


def ingest_file(payload: dict[str, Any]) -> dict[str, Any]:
    """Ingest one file, checked again to lie inside the folder that was listed (`root`): it may have
    been swapped for a link since. A file skipped or unreadable is reported (event + result), not retried."""
    rt = current_runtime()
    workspace = str(payload.get("workspace") or rt.settings.workspace)
    trace_id = str(payload["trace_id"])
    path = Path(payload["path"])
    # jobs queued before folders were recorded: the file's own folder, with no link followed
    root = Path(payload["root"]) if payload.get("root") else path.parent
    ingestor = Ingestor(rt.memory.store, workspace, limits=ingest_limits(rt.settings))
    result = ingestor.file(path, project=str(payload.get("project") or "inbox"), root=root,
                           trust="operator" if payload.get("trusted") else "untrusted")
    # `error` as in the other memory.ingest_failed events
    error = result.reason if result.outcome == "failed" else ""
    rt.events.record(trace_id, EVENT_KINDS[result.outcome], actor="worker", **result.as_dict(), error=error)
    return {**result.as_dict(), "error": error}


def remember_turn(rt: Runtime, inbound: Inbound, trace_id: str) -> None:
    """Keep the operator's message in memory when its channel is opted in (INGEST_CONVERSATIONS)."""
    if inbound.channel not in rt.settings.ingest.conversations or inbound.text.lstrip().startswith("/"):
        return
    try:
        item = Ingestor(rt.memory.store, rt.settings.workspace).note(
            inbound.text, author=inbound.user_id, source=f"conversation:{inbound.channel}",
            # a webhook's delivery is its sender's words, never the operator's
            trust="untrusted" if inbound.user_id.startswith("hook:") else "operator",
            meta={"thread": inbound.thread_id, "trace": trace_id},
        )
    except Exception as err:  # memory must never cost the operator their reply
        log.warning("conversation turn not remembered: %s", err)
        rt.events.record(trace_id, "memory.ingest_failed", actor="worker", error=f"{type(err).__name__}: {err}"[:300])
        return
    rt.events.record(trace_id, "memory.ingested", actor="worker", source=item.source, id=item.id)


def sweep_retention(payload: dict[str, Any]) -> dict[str, Any]:
    """Periodic: delete memories past their project's retention (or MEMORY_RETENTION_DAYS), from every backend."""
    rt = current_runtime()
    workspace = str(payload.get("workspace") or rt.settings.workspace)
    deleted = apply_retention(rt.memory.backends, Workspaces(rt.redis), workspace, rt.events,
                              default_days=rt.settings.memory.retention_days)
    return {"deleted": deleted}
