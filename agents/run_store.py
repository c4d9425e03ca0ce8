"""Runs in Redis: the plan, one checkpoint per finished step, and the run's status."""
from __future__ import annotations

from typing import Literal

from redis import Redis

from agents.plan import Plan, StepResult
from memory.keys import Keys

RunStatus = Literal["planned", "running", "awaiting_approval", "done", "failed", "denied", "blocked", "rejected", "expired"]


class RunStore:
    def __init__(self, redis: Redis, workspace: str, ttl_s: int = 30 * 86_400) -> None:
        self.redis = redis
        self.keys = Keys(workspace)
        self.ttl_s = ttl_s

    def save(self, plan: Plan) -> bool:
        """Store a new run's plan; an existing run keeps its plan (returns False)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys("run", plan.run_id, "plan"), plan.model_dump_json(), nx=True, ex=self.ttl_s)
        pipe.hsetnx(self.keys("run", plan.run_id), "status", "planned")
        pipe.expire(self.keys("run", plan.run_id), self.ttl_s)
        created, _, _ = pipe.execute()
        return bool(created)

    def replace_plan(self, plan: Plan) -> None:
        """An edited plan (the operator changed an argument): any approval of the old arguments no longer matches."""
        self.redis.set(self.keys("run", plan.run_id, "plan"), plan.model_dump_json(), ex=self.ttl_s)

    def plan(self, run_id: str) -> Plan | None:
        raw = self.redis.get(self.keys("run", run_id, "plan"))
        return Plan.model_validate_json(raw) if raw else None

    def checkpoint(self, run_id: str, result: StepResult) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.keys("run", run_id, "steps"), str(result.index), result.model_dump_json())
        pipe.expire(self.keys("run", run_id, "steps"), self.ttl_s)
        pipe.execute()

    def results(self, run_id: str) -> dict[int, StepResult]:
        raw = self.redis.hgetall(self.keys("run", run_id, "steps"))
        return {int(k): StepResult.model_validate_json(v) for k, v in raw.items()}

    def set_status(self, run_id: str, status: RunStatus, detail: str = "") -> None:
        self.redis.hset(self.keys("run", run_id), mapping={"status": status, "detail": detail[:500]})

    def status(self, run_id: str) -> tuple[str, str]:
        raw = self.redis.hmget(self.keys("run", run_id), ["status", "detail"])
        status, detail = ((v.decode() if isinstance(v, bytes) else v) or "" for v in raw)
        return status, detail
