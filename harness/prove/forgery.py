"""Jobs forged straight into Deputy's queues by anyone who can write to its Redis: rq imports a job's
function (and its callbacks) by dotted name, so such a job could name `os.system` as easily as one of
Deputy's own. A real worker pool takes them; what must hold is that none of them runs.

A forged function shows that it ran by writing a marker file in the scenario's folder. A forged
callback (rq calls it as `callback(job, connection, result)`) cannot write one, but rq records the
error it raises on that call as the job's failure, through rq's callback runner: that trace is the
sign it ran."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rq import Callback, Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from harness.prove.cluster import Cluster, PrivateRedis
from harness.prove.report import Row
from memory.events import EventLog

ENDED = {s.value for s in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)}
# frames of rq's callback runner in a job's recorded failure: a callback was imported and called
CALLBACK_FRAMES = ("execute_success_callback", "execute_failure_callback", "execute_stopped_callback")


@dataclass(frozen=True)
class Forgery:
    name: str
    queue: str
    func: str
    args: tuple[Any, ...]
    marker: Path | None = None
    on_success: str | None = None
    on_failure: str | None = None


def forgeries(markers: Path) -> list[Forgery]:
    """The jobs an intruder on Redis would queue, one on each of Deputy's queues at least."""
    def mark(name: str) -> Path:
        return markers / name

    return [
        Forgery("os.system", "interactive", "os.system", (f"echo forged > {mark('os-system')}",), marker=mark("os-system")),
        Forgery("subprocess.run", "default", "subprocess.run", (["/bin/sh", "-c", f"echo forged > {mark('subprocess-run')}"],),
                marker=mark("subprocess-run")),
        Forgery("builtins.eval", "background", "builtins.eval", (f"open({str(mark('eval'))!r}, 'w').write('forged')",),
                marker=mark("eval")),
        # one of Deputy's own job functions, carrying a forged callback: run by success, then by failure
        Forgery("noop + on_success os.system", "interactive", "jobs.health.ping", ({"forged": True},), on_success="os.system"),
        Forgery("noop + on_failure os.system", "default", "jobs.health.ping", ("too", "many", "arguments"),
                on_failure="os.system"),
    ]


def enqueue(redis: Any, forgery: Forgery) -> str:
    """What an intruder does: rq's own client, Deputy's queue names and serializer, no Deputy code."""
    queue = Queue(forgery.queue, connection=redis, serializer=JSONSerializer)
    job = queue.enqueue_call(
        forgery.func, args=forgery.args,
        on_success=Callback(forgery.on_success) if forgery.on_success else None,
        on_failure=Callback(forgery.on_failure) if forgery.on_failure else None,
    )
    return str(job.id)


@dataclass
class Outcome:
    forgery: Forgery
    job_id: str
    status: str = "missing"
    failure: str = ""
    said_refused: bool = False

    @property
    def ran(self) -> bool:
        marked = self.forgery.marker is not None and self.forgery.marker.exists()
        return marked or any(frame in self.failure for frame in CALLBACK_FRAMES)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def refused(self) -> bool:
        """Taken by a worker and failed, with nothing of it run."""
        return self.status == JobStatus.FAILED.value and not self.ran


def _look(redis: Any, workspace: str, outcome: Outcome) -> None:
    try:
        job = Job.fetch(outcome.job_id, connection=redis, serializer=JSONSerializer)
        status = job.get_status(refresh=True)
    except Exception:  # its hash is gone: nobody will run it, nor say what became of it
        outcome.status = "missing"
        return
    outcome.status = status.value if status else "missing"
    result = job.latest_result()
    outcome.failure = str(result.exc_string or "") if result is not None else ""
    outcome.said_refused = any(e.kind == "job.refused" for e in EventLog(redis, workspace).timeline(outcome.job_id))


def job_forgery(folder: Path, timeout_s: float = 30.0) -> Row:
    markers = folder / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    redis = PrivateRedis(folder / "redis").start()
    try:
        cluster = Cluster(folder, redis, {"JOB_RETRIES": "0"}, workers=1)
        cluster.folder.mkdir(parents=True, exist_ok=True)
        with cluster:
            cluster.start_workers()
            client = cluster.redis.client()
            outcomes = [Outcome(f, enqueue(client, f)) for f in forgeries(markers)]
            deadline = time.time() + timeout_s
            while True:
                for outcome in outcomes:
                    _look(client, cluster.workspace, outcome)
                if all(o.ended for o in outcomes) or time.time() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # a marker written by a child shell may land just after its job ended
            for outcome in outcomes:
                _look(client, cluster.workspace, outcome)
    finally:
        redis.stop()
    ran = [o for o in outcomes if o.ran]
    refused = [o for o in outcomes if o.refused]
    unended = [o for o in outcomes if not o.ended]
    checks = []
    if unended:
        checks.append(f"{len(unended)} forged jobs never ended (a worker stuck or dead?): "
                      + ", ".join(f"{o.forgery.name} ({o.status})" for o in unended))
    not_refused = [o for o in outcomes if not o.refused and not o.ran and o.ended]
    if not_refused:
        checks.append(f"{len(not_refused)} forged jobs were not refused: " + ", ".join(f"{o.forgery.name} ({o.status})" for o in not_refused))
    return Row(
        scenario="forged jobs on Redis",
        attempts=len(outcomes),
        unapproved_effects=len(ran),
        failed_checks=tuple(checks),
        notes=(f"{len(outcomes)} jobs queued straight into rq ({', '.join(o.forgery.name for o in outcomes)}) → "
               f"{len(refused)} refused, {len(ran)} ran"
               + (f" ({', '.join(o.forgery.name for o in ran)})" if ran else "")
               + f"; {sum(o.said_refused for o in outcomes)} refusals in the event log"),
        details={"forged": len(outcomes), "refused": len(refused), "ran": [o.forgery.name for o in ran],
                 "said_refused": sum(o.said_refused for o in outcomes),
                 "jobs": {o.forgery.name: {"status": o.status, "ran": o.ran, "failure": o.failure[-300:]} for o in outcomes}},
    )
