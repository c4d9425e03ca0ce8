"""What model calls cost: a price table, and a ledger of spend per run, project, model, kind of task and local day.

Amounts are kept as integer micro-dollars so Redis can add them atomically without float drift."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from ipaddress import ip_address, ip_network
from typing import Callable, Literal, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from redis import Redis

from kernel.keys import WorkspaceStore

MICRO = 1_000_000
# the kind of task of a call made without a purpose
OTHER = "other"
RUN_TTL_S = 90 * 86_400
DAY_TTL_S = 400 * 86_400

# USD per 1k tokens (prompt, completion); the operator's LLM_PRICES adds to and overrides these.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.00015, 0.0006),
    "gpt-4o": (0.0025, 0.01),
    "gpt-4.1": (0.002, 0.008),
    "gpt-4.1-mini": (0.0004, 0.0016),
    "gpt-4.1-nano": (0.0001, 0.0004),
    "o4-mini": (0.0011, 0.0044),
}

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def to_micro(usd: float) -> int:
    return int(round(usd * MICRO))


def usd(micro: int) -> float:
    return micro / MICRO


def money(micro: int) -> str:
    """$0.0123 below a dollar (small calls stay visible), $12.34 above; $0.01, not $0.0100."""
    value = usd(micro)
    if abs(value) >= 1:
        return f"${value:,.2f}"
    whole, _, cents = f"{value:.4f}".partition(".")
    return f"${whole}.{cents.rstrip('0').ljust(2, '0')}"


class PriceError(ValueError):
    """LLM_PRICES could not be read; the message says how to write it."""


@dataclass(frozen=True)
class Price:
    prompt_per_1k: float
    completion_per_1k: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Micro-dollars for this many tokens, rounded up so estimates never undershoot."""
        exact = (prompt_tokens * self.prompt_per_1k + completion_tokens * self.completion_per_1k) / 1000 * MICRO
        return int(-(-exact // 1))


# a model served here or on the private network; its calls cost nothing unless LLM_PRICES names it
LOCAL_NETWORKS = tuple(ip_network(n) for n in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
FREE = Price(0.0, 0.0)
# why a call cost nothing: its endpoint is local, or no price names its model
Unpriced = Literal["", "local", "unlisted"]


def local_endpoint(base_url: str | None) -> bool:
    """Whether `base_url` is on loopback or a private address (10/8, 172.16/12, 192.168/16), localhost or *.local."""
    host = (urlsplit(base_url).hostname or "") if base_url else ""
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in LOCAL_NETWORKS)


class PriceTable:
    """Prices per model: the built-in table of cloud models, extended and overridden by LLM_PRICES.

    A model no price names costs nothing, and so does every model behind a local endpoint (`local`) that LLM_PRICES
    itself does not name: a local model spends no money, and charging it like a cloud model ate the daily cap. Each
    such model is warned about once in the log; `LLM_PRICES='*:in:out'` prices every model not listed."""

    def __init__(self, prices: Mapping[str, Price], own: frozenset[str] | None = None, local: bool = False) -> None:
        self.prices = dict(prices)
        # the models LLM_PRICES names: the only ones priced behind a local endpoint
        self.own = frozenset(self.prices) if own is None else own
        self.local = local
        self._warned: set[str] = set()

    @classmethod
    def parse(cls, text: str, base: Mapping[str, tuple[float, float]] = DEFAULT_PRICES, local: bool = False) -> "PriceTable":
        table = {model: Price(*pair) for model, pair in base.items()}
        text = text.strip()
        if not text:
            return cls(table, frozenset(), local)
        try:
            if text.startswith("{"):
                raw = json.loads(text)
                entries = [(str(m), float(v[0]), float(v[1])) for m, v in raw.items()]
            else:
                entries = []
                for part in filter(None, (p.strip() for p in text.split(","))):
                    # model names may contain ':' (ollama tags), so the two prices are the last fields
                    model, prompt, completion = part.rsplit(":", 2)
                    entries.append((model.strip(), float(prompt), float(completion)))
        except (ValueError, TypeError, IndexError, AttributeError, json.JSONDecodeError) as err:
            raise PriceError(
                f"LLM_PRICES is not readable ({err}). Write it as 'model:usd_per_1k_in:usd_per_1k_out,...', "
                "e.g. 'gpt-4o-mini:0.00015:0.0006,llama3:latest:0:0', or as JSON {\"gpt-4o-mini\": [0.00015, 0.0006]}."
            ) from err
        for model, prompt, completion in entries:
            if prompt < 0 or completion < 0 or not model:
                raise PriceError(f"LLM_PRICES entry for '{model}' needs a model name and prices of 0 or more.")
            table[model] = Price(prompt, completion)
        return cls(table, frozenset(model for model, _, _ in entries), local)

    def lookup(self, model: str) -> Price | None:
        """The price that names `model`, or None when none does."""
        names = self.own if self.local else self.prices.keys()
        if model in names:
            return self.prices[model]
        # providers report dated variants ("gpt-4o-mini-2024-07-18"): take the longest known prefix
        prefixes = [m for m in names if m != "*" and model.startswith(m)]
        if prefixes:
            return self.prices[max(prefixes, key=len)]
        return self.prices["*"] if "*" in names else None

    def unpriced(self, model: str) -> Unpriced:
        """"" when a price names `model`; else why it costs nothing: "local" (its endpoint) or "unlisted"."""
        if self.lookup(model) is not None:
            return ""
        return "local" if self.local else "unlisted"

    def price(self, model: str) -> Price:
        found = self.lookup(model)
        if found is not None:
            return found
        if model not in self._warned:
            self._warned.add(model)
            where = "a local endpoint serves it" if self.local else "no price in the table names it"
            log.warning("model %r costs nothing: %s. Set LLM_PRICES (e.g. '%s:0.0005:0.0015') to charge its calls against "
                        "the budget", model, where, model)
        return FREE

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> int:
        return self.price(model).cost(prompt_tokens, completion_tokens)


@dataclass(frozen=True)
class Spend:
    """One priced model call, as recorded."""

    run_id: str
    project: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: int  # micro-dollars
    day: str  # operator's local date, YYYY-MM-DD
    # the kind of task (the call's purpose: intent, slots, plan, draft, digest, ask)
    kind: str = OTHER
    # why it cost nothing though no price said so ("local", "unlisted"); "" when a price named its model
    unpriced: Unpriced = ""


@dataclass(frozen=True)
class Totals:
    cost: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _int(value: object) -> int:
    if value is None:
        return 0
    return int(value.decode() if isinstance(value, bytes) else value)  # type: ignore[arg-type]


class CostLedger(WorkspaceStore):
    """Spend per run, per project per local day and month, per model, in Redis."""

    def __init__(self, redis: Redis, workspace: str, timezone: str = "UTC", clock: Clock | None = None) -> None:
        super().__init__(redis, workspace)
        self.tz = ZoneInfo(timezone)
        self.clock = clock or (lambda: datetime.now(self.tz))

    # --- local calendar
    def now(self) -> datetime:
        return self.clock().astimezone(self.tz)

    def today(self) -> date:
        return self.now().date()

    def day_key(self, day: date) -> str:
        return self.keys("cost", "day", day.isoformat())

    def month_key(self, day: date) -> str:
        return self.keys("cost", "month", day.strftime("%Y-%m"))

    def run_key(self, run_id: str) -> str:
        return self.keys("cost", "run", run_id)

    # --- writing
    def record(self, spend: Spend, pipe: object = None) -> None:
        """Add one call's actual spend to its run, project, model, day and month, in one transaction."""
        day = date.fromisoformat(spend.day)
        own = pipe is None
        p = self.redis.pipeline(transaction=True) if own else pipe
        for key, ttl in ((self.day_key(day), DAY_TTL_S), (self.month_key(day), DAY_TTL_S)):
            # "km:KIND:MODEL": kinds never hold ':', model names may (ollama tags)
            for field in ("total", f"p:{spend.project}", f"m:{spend.model}", f"km:{spend.kind}:{spend.model}"):
                p.hincrby(key, field, spend.cost)  # type: ignore[attr-defined]
            p.hincrby(key, "calls", 1)  # type: ignore[attr-defined]
            p.hincrby(key, f"calls:{spend.project}", 1)  # type: ignore[attr-defined]
            p.hincrby(key, "tokens_in", spend.prompt_tokens)  # type: ignore[attr-defined]
            p.hincrby(key, "tokens_out", spend.completion_tokens)  # type: ignore[attr-defined]
            if spend.unpriced:
                p.hincrby(key, f"free:{spend.unpriced}:{spend.model}", 1)  # type: ignore[attr-defined]
            p.expire(key, ttl)  # type: ignore[attr-defined]
        run = self.run_key(spend.run_id)
        p.hincrby(run, "cost", spend.cost)  # type: ignore[attr-defined]
        p.hincrby(run, "calls", 1)  # type: ignore[attr-defined]
        p.hincrby(run, "tokens_in", spend.prompt_tokens)  # type: ignore[attr-defined]
        p.hincrby(run, "tokens_out", spend.completion_tokens)  # type: ignore[attr-defined]
        p.hset(run, mapping={"project": spend.project, "model": spend.model, "day": spend.day})  # type: ignore[attr-defined]
        p.expire(run, RUN_TTL_S)  # type: ignore[attr-defined]
        p.zadd(self.keys("cost", "runs"), {spend.run_id: self.now().timestamp()})  # type: ignore[attr-defined]
        if own:
            p.execute()  # type: ignore[attr-defined]

    # --- reading
    def _hash(self, key: str) -> dict[str, int]:
        return {(k.decode() if isinstance(k, bytes) else k): _int(v) for k, v in self.redis.hgetall(key).items()}

    def day(self, day: date | None = None) -> dict[str, int]:
        return self._hash(self.day_key(day or self.today()))

    def month(self, day: date | None = None) -> dict[str, int]:
        return self._hash(self.month_key(day or self.today()))

    def project_day(self, project: str, day: date | None = None) -> int:
        return _int(self.redis.hget(self.day_key(day or self.today()), f"p:{project}"))

    def project_month(self, project: str, day: date | None = None) -> int:
        return _int(self.redis.hget(self.month_key(day or self.today()), f"p:{project}"))

    def run(self, run_id: str) -> Totals:
        row = self.redis.hgetall(self.run_key(run_id))
        get = lambda name: _int(row.get(name.encode()))  # noqa: E731
        return Totals(cost=get("cost"), calls=get("calls"), prompt_tokens=get("tokens_in"), completion_tokens=get("tokens_out"))

    def daily_series(self, days: int = 14, until: date | None = None) -> list[tuple[date, int]]:
        """Total spend per local day, oldest first, ending with `until` (today)."""
        end = until or self.today()
        span = [end - timedelta(days=n) for n in range(days - 1, -1, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for d in span:
            pipe.hget(self.day_key(d), "total")
        return [(d, _int(v)) for d, v in zip(span, pipe.execute())]

    @staticmethod
    def breakdown(row: Mapping[str, int], prefix: str) -> dict[str, int]:
        """{"p:inbox": 5, ...} → {"inbox": 5} for prefix "p:" (projects) or "m:" (models)."""
        return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}

    @staticmethod
    def by_kind(row: Mapping[str, int]) -> dict[str, dict[str, int]]:
        """Spend per kind of task and model: {"plan": {"gpt-4o": 1600}, ...}. What a day or month spent before kinds
        were recorded has none: `unrecorded` gives it."""
        kinds: dict[str, dict[str, int]] = {}
        for key, value in row.items():
            if key.startswith("km:"):
                kind, _, model = key[3:].partition(":")
                kinds.setdefault(kind, {})[model] = value
        return kinds

    @staticmethod
    def unpriced(row: Mapping[str, int]) -> dict[str, tuple[str, int]]:
        """The models whose calls cost nothing because no price named them: {model: ("local" or "unlisted", calls)}."""
        found: dict[str, tuple[str, int]] = {}
        for key, calls in row.items():
            if key.startswith("free:"):
                why, _, model = key[5:].partition(":")
                found[model] = (why, calls)
        return found

    @staticmethod
    def unrecorded(row: Mapping[str, int]) -> int:
        """Spend of the row recorded before the kind of task was (older ledgers)."""
        return max(0, row.get("total", 0) - sum(v for k, v in row.items() if k.startswith("km:")))
