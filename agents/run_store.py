"""Runs in Redis: the plan, one checkpoint per finished step, and the run's status."""
from __future__ import annotations

from typing import Any, Callable, Literal

from redis import Redis
from redis.exceptions import RedisError

from agents.plan import Plan, StepResult
from kernel.keys import WorkspaceStore

RunStatus = Literal["planned", "running", "awaiting_approval", "done", "failed", "denied", "blocked", "rejected", "expired", "superseded"]


class RunStore(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, ttl_s: int = 30 * 86_400) -> None:
        super().__init__(redis, workspace)
        self.ttl_s = ttl_s

    def pipeline(self) -> Any:
        """A transaction for writes that go together (a checkpoint with its events, a status with its event)."""
        return self.redis.pipeline(transaction=True)

    def writes(self) -> "Writes":
        """Writes of one executor call, batched until they must be in Redis (see Writes)."""
        return Writes(self.pipeline())

    def save(self, plan: Plan, also: Callable[[Any], object] | None = None) -> bool:
        """Store a new run's plan; an existing run keeps its plan (returns False).

        `also` queues more writes in the same transaction (the plan.made event), so they cost no extra round trip."""
        pipe = self.pipeline()
        pipe.set(self.keys("run", plan.run_id, "plan"), plan.model_dump_json(), nx=True, ex=self.ttl_s)
        pipe.hsetnx(self.keys("run", plan.run_id), "status", "planned")
        pipe.expire(self.keys("run", plan.run_id), self.ttl_s)
        if also is not None:
            also(pipe)
        return bool(pipe.execute()[0])

    def replace_plan(self, plan: Plan) -> None:
        """An edited plan (the operator changed an argument): any approval of the old arguments no longer matches."""
        self.redis.set(self.keys("run", plan.run_id, "plan"), plan.model_dump_json(), ex=self.ttl_s)

    def plan(self, run_id: str) -> Plan | None:
        raw = self.redis.get(self.keys("run", run_id, "plan"))
        return Plan.model_validate_json(raw) if raw else None

    def load(self, run_id: str) -> tuple[Plan | None, dict[int, StepResult]]:
        """The plan and every checkpoint, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys("run", run_id, "plan"))
        pipe.hgetall(self.keys("run", run_id, "steps"))
        raw_plan, raw_steps = pipe.execute()
        plan = Plan.model_validate_json(raw_plan) if raw_plan else None
        return plan, {int(k): StepResult.model_validate_json(v) for k, v in raw_steps.items()}

    def checkpoint(self, run_id: str, result: StepResult, pipe: Any = None) -> None:
        """Record a step's result; inside a caller's transaction when `pipe` is given (sent when it executes)."""
        own = pipe is None
        p = self.pipeline() if own else pipe
        p.hset(self.keys("run", run_id, "steps"), str(result.index), result.model_dump_json())
        p.expire(self.keys("run", run_id, "steps"), self.ttl_s)
        if own:
            p.execute()

    def results(self, run_id: str) -> dict[int, StepResult]:
        raw = self.redis.hgetall(self.keys("run", run_id, "steps"))
        return {int(k): StepResult.model_validate_json(v) for k, v in raw.items()}

    def set_status(self, run_id: str, status: RunStatus, detail: str = "", pipe: Any = None) -> None:
        (pipe if pipe is not None else self.redis).hset(self.keys("run", run_id), mapping={"status": status, "detail": detail[:500]})

    def status(self, run_id: str) -> tuple[str, str]:
        raw = self.redis.hmget(self.keys("run", run_id), ["status", "detail"])
        status, detail = ((v.decode() if isinstance(v, bytes) else v) or "" for v in raw)
        return status, detail


class Writes:
    """A run's writes that are not in Redis yet. They go in one transaction at the next point that needs them:
    before an effect or an approval, before the step after a finished one, and at the end of the run."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        # a finished step's checkpoint is waiting: it must be in Redis before the next step runs
        self.checkpoint = False

    def flush(self) -> None:
        if len(self.pipe):
            self.pipe.execute()
        self.checkpoint = False

    def flush_quietly(self) -> None:
        try:
            self.flush()
        except RedisError:
            pass  # the error that brought us here is the one to report
