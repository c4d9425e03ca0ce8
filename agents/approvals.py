"""Approvals: a suspended step waiting for a person, bound to the exact action by a digest.

First decision wins (one Lua script); a late, duplicate, expired or unauthorised click changes nothing."""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field
from redis import Redis

from kernel.messages import Frozen
from kernel.keys import WorkspaceStore

# superseded: the operator corrected the action before deciding; the newer card is the one that counts
ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "superseded"]
Verdict = Literal["approved", "rejected"]
Outcome = Literal["decided", "ours", "already", "forbidden", "expired", "missing"]

DECIDE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', '', '', ''} end
local s = redis.call('HMGET', KEYS[1], 'status', 'decided_by', 'decided_at', 'decision_trace', 'expires_at')
if s[1] ~= 'pending' then
  if s[4] == ARGV[3] then return {'ours', s[1], s[2], s[3]} end
  return {'already', s[1], s[2] or '', s[3] or ''}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return {'forbidden', s[1], '', ''} end
if tonumber(s[5]) <= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'decided_at', ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[5])
  return {'expired', 'expired', '', ARGV[4]}
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decided_by', ARGV[1], 'decided_at', ARGV[4], 'decision_trace', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[5])
return {'decided', ARGV[2], ARGV[1], ARGV[4]}
"""

SUPERSEDE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'superseded', 'decided_by', ARGV[1], 'decided_at', ARGV[2], 'decision_trace', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"""


class Approval(Frozen):
    id: str
    run_id: str
    step_index: int
    trace_id: str
    capability: str
    args: dict[str, Any]
    digest: str
    rationale: str
    risk_score: int
    risk_reasons: tuple[str, ...] = ()
    why: str = ""
    flags: tuple[str, ...] = ()
    # the specialist whose plan asks (agents/specialists.py); "" for a plan that has none
    specialist: str = ""
    # how the capability presents itself: the card's question and the exact action
    title: str = ""
    preview: str = ""
    # whether the action can be undone once done, in the card's words ("This cannot be undone"); "" where unsaid
    reversibility: str = ""
    deciders: tuple[str, ...] = Field(min_length=1)
    created_at: float
    expires_at: float

    @property
    def card_id(self) -> str:
        return f"approval-{self.id}"


@dataclass(frozen=True)
class ApprovalState:
    status: ApprovalStatus
    decided_by: str = ""
    decided_at: float | None = None


@dataclass(frozen=True)
class DecideResult:
    outcome: Outcome
    state: ApprovalState


def new_approval_id() -> str:
    return uuid.uuid4().hex[:12]


class ApprovalStore(WorkspaceStore):
    def __init__(self, redis: Redis, workspace: str, ttl_s: int = 30 * 86_400) -> None:
        super().__init__(redis, workspace)
        self.ttl_s = ttl_s
        self._decide = redis.register_script(DECIDE)
        self._supersede = redis.register_script(SUPERSEDE)

    def create(self, approval: Approval) -> Approval:
        """Store an approval once per (run, step): a re-run gets the approval it already asked for."""
        by_step = self.keys("approval", "step", approval.run_id, approval.step_index)
        if not self.redis.set(by_step, approval.id, nx=True, ex=self.ttl_s):
            existing = self.for_step(approval.run_id, approval.step_index)
            if existing is not None:
                return existing
            self.redis.set(by_step, approval.id, ex=self.ttl_s)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys("approval", approval.id), approval.model_dump_json(), ex=self.ttl_s)
        pipe.hset(self.keys("approval", approval.id, "state"), mapping={"status": "pending", "expires_at": repr(approval.expires_at)})
        pipe.expire(self.keys("approval", approval.id, "state"), self.ttl_s)
        pipe.sadd(self.keys("approval", approval.id, "deciders"), *approval.deciders)
        pipe.expire(self.keys("approval", approval.id, "deciders"), self.ttl_s)
        pipe.zadd(self.keys("approvals", "pending"), {approval.id: approval.expires_at})
        pipe.execute()
        return approval

    def get(self, approval_id: str) -> Approval | None:
        raw = self.redis.get(self.keys("approval", approval_id))
        return Approval.model_validate_json(raw) if raw else None

    def for_step(self, run_id: str, index: int) -> Approval | None:
        approval_id = self.redis.get(self.keys("approval", "step", run_id, index))
        if not approval_id:
            return None
        return self.get(approval_id.decode() if isinstance(approval_id, bytes) else approval_id)

    def for_step_with_state(self, run_id: str, index: int, now: float | None = None) -> tuple[Approval, ApprovalState] | None:
        """The step's approval and its state, read together."""
        approval_id = self.redis.get(self.keys("approval", "step", run_id, index))
        if not approval_id:
            return None
        approval_id = approval_id.decode() if isinstance(approval_id, bytes) else approval_id
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys("approval", approval_id))
        pipe.hgetall(self.keys("approval", approval_id, "state"))
        raw, fields = pipe.execute()
        if not raw:
            return None
        return Approval.model_validate_json(raw), _state(fields, now)

    def state(self, approval_id: str, now: float | None = None) -> ApprovalState:
        return _state(self.redis.hgetall(self.keys("approval", approval_id, "state")), now)

    def decide(self, approval_id: str, actor: str, verdict: Verdict, trace_id: str, now: float | None = None) -> DecideResult:
        """Atomically record the first decision; see Outcome for what a later call gets."""
        when = now if now is not None else time.time()
        outcome, status, by, at = (
            x.decode() if isinstance(x, bytes) else x
            for x in self._decide(
                keys=[self.keys("approval", approval_id, "state"), self.keys("approval", approval_id, "deciders"),
                      self.keys("approvals", "pending")],
                args=[actor, verdict, trace_id, repr(when), approval_id],
            )
        )
        state = ApprovalState(status=status or "expired", decided_by=by or "", decided_at=float(at) if at else None)  # type: ignore[arg-type]
        return DecideResult(outcome=outcome, state=state)  # type: ignore[arg-type]

    def supersede(self, approval_id: str, trace_id: str, now: float | None = None) -> bool:
        """Retire a pending approval in favour of a corrected action (asked for under `trace_id`): its buttons
        no longer approve anything. False when it was already decided."""
        when = now if now is not None else time.time()
        keys = [self.keys("approval", approval_id, "state"), self.keys("approvals", "pending")]
        return bool(self._supersede(keys=keys, args=[trace_id, repr(when), approval_id]))

    def pending(self, now: float | None = None) -> list[Approval]:
        ids = self.redis.zrangebyscore(self.keys("approvals", "pending"), now if now is not None else time.time(), "+inf")
        return [a for a in (self.get(i.decode() if isinstance(i, bytes) else i) for i in ids) if a]


def _state(raw: dict[Any, Any], now: float | None) -> ApprovalState:
    f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
    status = f.get("status", "expired")
    if status == "pending" and float(f.get("expires_at", "0")) <= (now if now is not None else time.time()):
        status = "expired"
    at = f.get("decided_at")
    return ApprovalState(status=status, decided_by=f.get("decided_by", ""), decided_at=float(at) if at else None)  # type: ignore[arg-type]
