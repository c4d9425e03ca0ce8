"""Budgets checked before spend: every model call is priced before it is made and held against its
project's daily and monthly caps; a call that would exceed one degrades or asks first.

The ladder, in order: the usual model; the cheaper tier (OPENAI_CHEAP_MODEL); for background work,
the same job again tomorrow; otherwise an "approve more spend" card. Approving raises today's cap by
what the call needs and runs the request again, so the call goes through once."""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time as dtime, timedelta
from typing import Any, Literal, Sequence

from redis import Redis

from agents.costs import CostLedger, Spend, to_micro
from kernel.context import bound
from kernel.messages import Frozen, Outcome
from agents.scheduling import JobScheduler, UnregisteredJob

REQUEST_TTL_S = 2 * 86_400
# a held estimate outlives a crashed worker by this long at most
HOLD_TTL_S = 600

# Count what is spent and held against both caps (plus today's approved extra) and hold the
# estimate only if it fits: two workers cannot both take the last of a budget.
RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[5])
local held = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  held = held + tonumber(string.match(member, ':(%d+)$'))
end
local est = tonumber(ARGV[2])
local grant = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local day = tonumber(redis.call('HGET', KEYS[1], 'p:' .. ARGV[1]) or '0')
local month = tonumber(redis.call('HGET', KEYS[2], 'p:' .. ARGV[1]) or '0')
local dcap = tonumber(ARGV[3])
local mcap = tonumber(ARGV[4])
if dcap >= 0 and day + held + est > dcap + grant then return {0, 'daily', day + held, dcap + grant} end
if mcap >= 0 and month + held + est > mcap + grant then return {0, 'monthly', month + held, mcap + grant} end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[7] .. ':' .. ARGV[2])
redis.call('EXPIRE', KEYS[4], 86400)
return {1, '', day + held, 0}
"""

# First decision wins; an approval adds the extra to today's allowance in the same step.
DECIDE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[5]) then
  if ARGV[1] == 'approved' then
    redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4])
    redis.call('EXPIRE', KEYS[2], 259200)
  end
  redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[5])
  return 1
end
return 0
"""


class BudgetError(ValueError):
    """BUDGET_CAPS could not be read; the message says how to write it."""


@dataclass(frozen=True)
class Caps:
    """Per-project caps in micro-dollars; None is no cap."""

    daily: int | None
    monthly: int | None
    overrides: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)

    @classmethod
    def parse(cls, daily_usd: float, monthly_usd: float, overrides: Sequence[str] = ()) -> "Caps":
        cap = lambda v: to_micro(v) if v > 0 else None  # noqa: E731
        table: dict[str, tuple[int | None, int | None]] = {}
        for part in overrides:
            try:
                project, day, month = (x.strip() for x in part.split(":"))
                table[project.lower()] = (cap(float(day)), cap(float(month)))
            except ValueError as err:
                raise BudgetError(
                    f"BUDGET_CAPS entry '{part}' is not 'project:daily_usd:monthly_usd' "
                    "(e.g. 'clients:2:40,research:0.5:5'; 0 means no cap)."
                ) from err
        return cls(cap(daily_usd), cap(monthly_usd), table)

    def of(self, project: str) -> tuple[int | None, int | None]:
        return self.overrides.get(project.lower(), (self.daily, self.monthly))


@dataclass(frozen=True)
class Charge:
    """Who pays for the model calls made in this context: a run, its project, and how to redo it."""

    run_id: str = "unattributed"
    project: str = "inbox"
    # a job (dotted name + payload) that redoes the whole request once more spend is approved
    resume_func: str = ""
    resume_payload: dict[str, Any] = field(default_factory=dict)
    # background work waits for tomorrow's budget instead of asking
    when_over: Literal["ask", "defer"] = "ask"
    # when the job making these calls is stopped (epoch seconds; None: no limit): a retry that cannot finish
    # before then is not started
    deadline: float | None = None


_charge: contextvars.ContextVar[Charge] = contextvars.ContextVar("deputy_charge", default=Charge())


def charge_to(charge: Charge) -> contextlib.AbstractContextManager[Charge]:
    """Attribute the model calls made inside this block to `charge`."""
    return bound(_charge, charge)


def current_charge() -> Charge:
    return _charge.get()


class SpendRequest(Frozen):
    """A call that did not fit its budget, waiting for the operator."""

    id: str
    run_id: str
    project: str
    model: str
    scope: Literal["daily", "monthly"]
    estimate: int
    spent: int
    cap: int
    extra: int
    day: str
    status: str = "pending"
    decided_by: str = ""
    resume_func: str = ""
    resume_payload: dict[str, Any] = {}


class OverBudget(Exception):
    """A model call was not made because it would exceed a cap. `outcome` says so to the operator."""

    def __init__(self, project: str, outcome: Outcome, request: SpendRequest | None = None) -> None:
        super().__init__(outcome.text)
        self.project = project
        self.outcome = outcome
        self.request = request


@dataclass(frozen=True)
class Hold:
    member: str
    project: str


class Budgets:
    """Caps, holds and approved extras per project, over one CostLedger."""

    def __init__(self, redis: Redis, ledger: CostLedger, caps: Caps, scheduler: JobScheduler | None = None) -> None:
        self.redis = redis
        self.ledger = ledger
        self.caps = caps
        self.scheduler = scheduler
        self.keys = ledger.keys
        self._reserve = redis.register_script(RESERVE)
        self._decide = redis.register_script(DECIDE)

    def grants_key(self, day: str) -> str:
        return self.keys("cost", "grant", day)

    def holds_key(self, project: str) -> str:
        return self.keys("cost", "held", project)

    def caps_of(self, project: str) -> tuple[int | None, int | None]:
        """(daily, monthly) in micro-dollars: settings, overridden by what the operator set in chat."""
        daily, monthly = self.caps.of(project)
        raw = self.redis.hmget(self.keys("cost", "caps"), f"{project}:monthly", "*:monthly")
        chosen = raw[0] if raw[0] is not None else raw[1]
        if chosen is not None:
            monthly = int(chosen) or None
        return daily, monthly

    def set_monthly(self, micro: int, project: str = "*") -> None:
        """The operator's new monthly cap (0 removes it), for one project or ("*") all of them."""
        self.redis.hset(self.keys("cost", "caps"), f"{project}:monthly", micro)

    def reserve(self, project: str, estimate: int) -> Hold | tuple[str, int, int]:
        """Hold `estimate` against the caps, or say which cap it would break: (scope, spent, cap)."""
        today = self.ledger.today()
        daily, monthly = self.caps_of(project)
        now = self.ledger.now().timestamp()
        member_id = uuid.uuid4().hex[:12]
        ok, scope, spent, cap = self._reserve(
            keys=[self.ledger.day_key(today), self.ledger.month_key(today), self.grants_key(today.isoformat()), self.holds_key(project)],
            args=[project, estimate, -1 if daily is None else daily, -1 if monthly is None else monthly, now, now + HOLD_TTL_S, member_id],
        )
        if ok:
            return Hold(member=f"{member_id}:{estimate}", project=project)
        return (scope.decode() if isinstance(scope, bytes) else scope), int(spent), int(cap)

    def settle(self, hold: Hold, spend: Spend | None) -> None:
        """Release a hold and record what the call really cost, together."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.holds_key(hold.project), hold.member)
        if spend is not None:
            self.ledger.record(spend, pipe=pipe)
        pipe.execute()

    def granted(self, project: str) -> int:
        raw = self.redis.hget(self.grants_key(self.ledger.today().isoformat()), project)
        return int(raw or 0)

    # --- asking for more
    def ask(self, charge: Charge, model: str, estimate: int, scope: str, spent: int, cap: int) -> SpendRequest:
        # round the extra up to a whole cent: a card asking for $0.000013 helps nobody
        extra = max(spent + estimate - cap, 1)
        extra = -(-extra // 10_000) * 10_000
        request = SpendRequest(
            id=uuid.uuid4().hex[:12], run_id=charge.run_id, project=charge.project, model=model, scope=scope,  # type: ignore[arg-type]
            estimate=estimate, spent=spent, cap=cap, extra=extra, day=self.ledger.today().isoformat(),
            resume_func=charge.resume_func, resume_payload=charge.resume_payload,
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys("spend_request", request.id), request.model_dump_json(), ex=REQUEST_TTL_S)
        pipe.zadd(self.keys("spend_requests"), {request.id: self.ledger.now().timestamp()})
        pipe.zremrangebyscore(self.keys("spend_requests"), "-inf", self.ledger.now().timestamp() - REQUEST_TTL_S)
        pipe.execute()
        return request

    def pending_requests(self) -> list[SpendRequest]:
        ids = [i.decode() for i in self.redis.zrange(self.keys("spend_requests"), 0, -1)]
        found = [self.request(i) for i in ids]
        return [r for r in found if r is not None and r.status == "pending"]

    def request(self, request_id: str) -> SpendRequest | None:
        key = self.keys("spend_request", request_id)
        raw, status, by = self.redis.mget(key, f"{key}:status", f"{key}:by")
        if not raw:
            return None
        request = SpendRequest.model_validate_json(raw)
        if status:
            request = request.model_copy(update={"status": status.decode(), "decided_by": (by or b"").decode()})
        return request

    def decide(self, request_id: str, approve: bool, by: str) -> tuple[SpendRequest | None, bool]:
        """(request, whether this click decided it). Approving adds the extra to today's caps and
        runs the request again; a second click changes nothing."""
        request = self.request(request_id)
        if request is None:
            return None, False
        key = self.keys("spend_request", request_id)
        fresh = bool(self._decide(
            keys=[f"{key}:status", self.grants_key(self.ledger.today().isoformat()), f"{key}:by"],
            args=["approved" if approve else "declined", by, request.project, request.extra, REQUEST_TTL_S],
        ))
        request = self.request(request_id) or request
        resumed = f"{key}:resumed"
        # Resume on the deciding click, and also when that click's job died between deciding and
        # queuing (its retry is not fresh): the marker, set only after queuing, says it was done.
        if request.status == "approved" and request.resume_func and self.scheduler is not None and not self.redis.exists(resumed):
            payload = dict(request.resume_payload)
            # a fresh trace, derived from the request, so a retried decision cannot run it twice
            payload["trace_id"] = hashlib.sha256(f"spend:{request.id}".encode()).hexdigest()[:16]
            payload["resumes"] = request.run_id
            try:
                self.scheduler.run_now(request.resume_func, payload, job_id=payload["trace_id"])
            except UnregisteredJob:
                # a stored name that is not one of Deputy's jobs (the scheduler refused it): nothing is redone
                request = request.model_copy(update={"resume_func": ""})
            self.redis.set(resumed, "1", ex=REQUEST_TTL_S)
        return request, fresh

    def tomorrow(self) -> datetime:
        local = self.ledger.now()
        start = datetime.combine(local.date() + timedelta(days=1), dtime(0, 5), tzinfo=local.tzinfo)
        return start

    # --- what /budget and the digest show
    def status(self, projects: list[str] | None = None) -> list[dict[str, Any]]:
        day, month = self.ledger.day(), self.ledger.month()
        names = set(projects or []) | set(CostLedger.breakdown(day, "p:")) | set(CostLedger.breakdown(month, "p:"))
        names |= set(self.caps.overrides)
        rows = []
        for project in sorted(names or {"inbox"}):
            daily, monthly = self.caps_of(project)
            extra = self.granted(project)
            rows.append({
                "project": project, "today": day.get(f"p:{project}", 0), "month": month.get(f"p:{project}", 0),
                "daily_cap": None if daily is None else daily + extra, "monthly_cap": monthly, "extra_today": extra,
                "calls_today": day.get(f"calls:{project}", 0),
            })
        return rows
