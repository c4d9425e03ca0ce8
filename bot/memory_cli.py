"""`deputy ingest` and `deputy forget`: filling and trimming semantic memory from the shell."""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from kernel.settings import Settings
from kernel import job_names

if TYPE_CHECKING:
    from jobs.memory_wiring import Memory
    from memory.folder import Listing
    from memory.ingest import FileResult


def ingest_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a file or a folder (txt, md, pdf, eml, csv; folders are walked)")
    parser.add_argument("--project", default="inbox", help="the project these memories belong to (default inbox)")
    parser.add_argument("--now", action="store_true", help="ingest here and now instead of as background jobs")
    parser.add_argument("--wait", action="store_true", help="queue background jobs, then show their progress until done")
    parser.add_argument("--trusted", action="store_true",
                        help="the operator wrote these files: show them to models as the operator's words, not as untrusted data")


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Report each file as a line: ingested (with what was left out, if anything) or skipped with
    the reason on stdout, failed on stderr; exit 1 when a file failed."""
    import logging

    from jobs.ingest import ingest_limits
    from memory.folder import list_files
    from memory.ingest import FileResult, IngestError

    limits = ingest_limits(settings)
    try:
        listing = list_files(args.path, limits.max_file_bytes)
    except IngestError as err:
        print(f"deputy ingest: {err}", file=sys.stderr)
        return 2
    skipped = [FileResult(str(path), "skipped", reason) for path, reason in listing.skipped]
    for result in skipped:
        print(result.describe())
    if not listing.files:
        print(f"deputy ingest: nothing to ingest under {args.path} (Deputy reads .txt .md .pdf .eml .csv)", file=sys.stderr)
        return 1
    # the per-file error line says what is wrong; pypdf's own warnings would bury it
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    trace_id = f"ingest-{uuid.uuid4().hex[:12]}"
    project = args.project.strip().lower()
    if args.now:
        return _ingest_now(listing, len(skipped), project, args.trusted, settings, trace_id)
    return _queue(args, listing, skipped, project, settings, trace_id)


def _queue(args: argparse.Namespace, listing: Listing, skipped: list[FileResult], project: str, settings: Settings,
           trace_id: str) -> int:
    from redis import Redis

    from jobs.queues import BACKGROUND, JobQueues
    from memory.events import EventLog

    redis = Redis.from_url(settings.redis_url)
    queues = JobQueues(redis, settings.job.retries, settings.job.retry_backoff, max(settings.job.timeout_s, 600))
    events = EventLog(redis, settings.workspace)
    events.record(trace_id, "memory.ingest_queued", actor="cli", path=str(args.path), files=len(listing.files),
                  skipped=len(skipped))
    with redis.pipeline(transaction=False) as pipe:
        for result in skipped:
            events.record(trace_id, "memory.ingest_skipped", actor="cli", pipe=pipe, **result.as_dict())
        pipe.execute()
    job_ids = []
    for path in listing.files:
        try:
            stat = path.stat()
        except OSError:  # gone since the listing: its job says so
            stat = None
        version = f"{stat.st_mtime_ns}|{stat.st_size}" if stat else "gone"
        key = hashlib.sha256(f"{settings.workspace}|{project}|{path}|{version}".encode()).hexdigest()[:20]
        payload = {"workspace": settings.workspace, "path": str(path), "root": str(listing.root), "project": project,
                   "trusted": bool(args.trusted), "trace_id": trace_id}
        job_ids.append(queues.enqueue(job_names.INGEST_FILE, payload, job_id=f"ingest-{key}", queue=BACKGROUND).id)
    print(f"Queued {len(listing.files)} file(s) for ingestion (trace {trace_id}); a worker takes them from the background queue."
          + (f" {len(skipped)} skipped (see above)." if skipped else ""))
    if args.wait:
        return _wait(queues, job_ids)
    return 0


def _ingest_now(listing: Listing, skipped: int, project: str, trusted: bool, settings: Settings, trace_id: str) -> int:
    from tqdm import tqdm

    from jobs.ingest import ingest_limits
    from memory.ingest import Ingestor

    memory = _open_memory(settings)
    if memory is None:
        return 2
    ingestor = Ingestor(memory.store, settings.workspace, limits=ingest_limits(settings))
    counts = {"ingested": 0, "skipped": skipped, "failed": 0}
    chunks = duplicates = 0
    with tqdm(listing.files, unit="file", file=sys.stderr, dynamic_ncols=True) as bar:
        for path in bar:
            bar.set_postfix_str(path.name[-30:])
            result = ingestor.file(path, project=project, trust="operator" if trusted else "untrusted", root=listing.root)
            chunks += result.chunks
            duplicates += result.duplicates
            counts[result.outcome] += 1
            bar.write(result.describe(), file=sys.stderr if result.outcome == "failed" else sys.stdout)
    memory.close()
    total = len(listing.files) + skipped
    print(f"Ingested {counts['ingested']} of {total} file(s): {chunks} new chunk(s), {duplicates} already known"
          + "".join(f"; {counts[o]} {o}" for o in ("skipped", "failed") if counts[o]) + f". (trace {trace_id})")
    return 1 if counts["failed"] else 0


def _wait(queues, job_ids: list[str]) -> int:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    from memory.ingest import FileResult

    pending = set(job_ids)
    failed = 0
    with tqdm(total=len(job_ids), unit="file", file=sys.stderr) as bar:
        while pending:
            for job_id in list(pending):
                job = queues.fetch(job_id)
                status = job.get_status(refresh=True) if job else None
                if status is None or str(status) in ("finished", "failed", "canceled", "stopped",
                                                     "JobStatus.FINISHED", "JobStatus.FAILED"):
                    pending.discard(job_id)
                    bar.update(1)
                    result = job.return_value() if job and str(status).endswith(("finished", "FINISHED")) else None
                    if result and result.get("outcome"):
                        line = FileResult(**{k: v for k, v in result.items() if k != "error"})
                        failed += line.outcome == "failed"
                        bar.write(line.describe(), file=sys.stderr if line.outcome == "failed" else sys.stdout)
                    elif job is not None and str(status).endswith(("failed", "FAILED")):
                        failed += 1
                        bar.write(f"failed job {job_id}: {(job.exc_info or '').strip().splitlines()[-1:]}", file=sys.stderr)
            time.sleep(0.2)
    return 1 if failed else 0


def forget_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help="forget this text everywhere: notes, facts, tasks, memories, transcripts, "
                                               "events, jobs (shows what goes first)")
    parser.add_argument("--yes", action="store_true", help="forget TEXT without asking")
    parser.add_argument("--id", action="append", dest="ids", help="a memory id (repeatable)")
    parser.add_argument("--source", help="a source: remember, email, conversation:slack, or a file path that was ingested")
    parser.add_argument("--project", help="every memory of this project")


def _open_memory(settings: Settings) -> "Memory | None":
    """Semantic memory for a command, or None after saying what to fix: with WEAVIATE_URL set and Weaviate not
    answering, nothing is written to (or forgotten from) the embedded store alone."""
    from jobs.memory_wiring import open_memory
    from memory.weaviate_connect import WeaviateUnavailable

    try:
        return open_memory(settings)
    except WeaviateUnavailable as err:
        print(f"deputy: {err}", file=sys.stderr)
        return None


def run_forget(args: argparse.Namespace, settings: Settings) -> int:
    memory = _open_memory(settings)
    if memory is None:
        return 2
    try:
        if args.text:
            return _forget_text(args.text, args.yes, settings, memory.backends)
        return _forget_memories(args, settings, memory.backends)
    finally:
        memory.close()


def _forget_text(text: str, yes: bool, settings: Settings, backends: dict) -> int:  # type: ignore[type-arg]
    from redis import Redis

    from jobs.job_copies import JobCopies
    from memory.events import EventLog
    from memory.facts import FactStore
    from memory.forgetting import Forgetting
    from memory.notes import NoteStore
    from memory.tasks import TaskStore

    redis, ws = Redis.from_url(settings.redis_url), settings.workspace
    forgetting = Forgetting(NoteStore(redis, ws), FactStore(redis, ws), TaskStore(redis, ws), backends, EventLog(redis, ws),
                            copies=[JobCopies(redis)])
    sweep = forgetting.preview(text)
    print("Would forget: " + (", ".join(f"{n} from {store}" for store, n in sweep.stores.items()) or "nothing"))
    for example in sweep.examples:
        print(f"  e.g. {example[:120]}")
    for channel, n in sweep.delivered.items():
        print(f"  not removable: {n} message(s) already delivered on {channel} cannot be unsent")
    if not sweep.total:
        return 0
    if not yes and (not sys.stdin.isatty() or input("Forget all of it? [y/N] ").strip().lower() not in ("y", "yes")):
        print("Kept: nothing was removed." + ("" if sys.stdin.isatty() else " (add --yes to forget without asking)"))
        return 1
    done = forgetting.forget(text, actor="cli")
    print("Forgot " + ", ".join(f"{n} from {store}" for store, n in done.stores.items()) + ".")
    return 0


def _forget_memories(args: argparse.Namespace, settings: Settings, backends: dict) -> int:  # type: ignore[type-arg]
    from redis import Redis

    from memory.events import EventLog
    from memory.ingest import source_for
    from memory.retention import NothingToForget, forget

    source = args.source
    if source and not source.startswith("file:") and Path(source).exists():
        source = source_for(Path(source))
    try:
        deleted = forget(backends, EventLog(Redis.from_url(settings.redis_url), settings.workspace), settings.workspace,
                         ids=args.ids, source=source, project=args.project.strip().lower() if args.project else None, actor="cli")
    except NothingToForget as err:
        print(f"deputy forget: {err}", file=sys.stderr)
        return 2
    total = sum(deleted.values())
    where = ", ".join(f"{n} from {name}" for name, n in deleted.items())
    print(f"Forgot {total} memor{'y' if total == 1 else 'ies'} ({where}).")
    return 0
