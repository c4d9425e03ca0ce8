"""`deputy capabilities` (what Deputy can do, how carefully, and which specialist may do it) and `deputy check`
(connector health, and the model endpoint: its models, whether it answers with tool calls, what its calls cost)."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from kernel.settings import Settings

if TYPE_CHECKING:
    from agents.endpoint_check import EndpointReport
    from agents.policy import Policy

# the longest `deputy check` waits for the model endpoint, per request (a local model's first answer can be slow)
CHECK_TIMEOUT_S = 30.0


def _capabilities(settings: Settings):  # type: ignore[no-untyped-def]
    from redis import Redis

    from integrations.registry import build_capabilities

    return build_capabilities(settings, Redis.from_url(settings.redis_url))


def list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_capabilities(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.agent_wiring import policy_for

    caps = _capabilities(settings)
    policy = policy_for(settings)
    rows = [
        {"name": c.name, "risk": c.risk.value, "side_effect": c.side_effect, "reversible": c.reversible,
         "compensation": c.compensation, "idempotency": c.idempotency, "retry": c.retry.attempts,
         "policy": policy.autonomy(c.name), "description": c.description}
        for c in sorted(caps.values(), key=lambda c: c.name)
    ]
    specialists = _specialists(set(caps), policy)
    if args.json:
        print(json.dumps({"capabilities": rows, "specialists": specialists}))
        return 0
    print(f"{'capability':<18} {'risk':<15} {'effect':<7} {'undone by':<16} {'idempotency':<11} {'policy':<8} description")
    for r in rows:
        # a read changes nothing to undo; an effect names its compensation, or cannot be undone
        undo = "—" if not r["side_effect"] else (r["compensation"] or "cannot")
        print(f"{r['name']:<18} {r['risk']:<15} {'yes' if r['side_effect'] else 'no':<7} {undo:<16} "
              f"{r['idempotency']:<11} {r['policy']:<8} {r['description']}")
    if not any(r["name"] == "email.send" for r in rows):
        print("(email.send is off: set SMTP_HOST and SMTP_FROM to turn it on)")
    print("\nSpecialists: each plan belongs to one, and may use only its capabilities (* = not configured here)")
    for s in specialists:
        print(f"{s['name']:<9} {s['description']}")
        print(f"{'':<9} may: {', '.join(c['name'] + ('' if c['configured'] else '*') for c in s['capabilities'])}")
        if s["rules"]:
            print(f"{'':<9} rules: {'; '.join(s['rules'])}")
    return 0


def _specialists(configured: set[str], policy: "Policy") -> list[dict[str, Any]]:
    from agents.specialists import SPECIALISTS

    def rules(name: str) -> list[str]:
        own = policy.specialists.get(name)
        return [f"{r.when.replace('_', ' ')}{f' {r.amount:g}' if r.amount is not None else ''} → {r.then}"
                for r in (own.rules if own is not None else ())]

    return [{"name": s.name, "description": s.description, "intents": list(s.intents), "playbooks": list(s.playbooks),
             "capabilities": [{"name": c, "configured": c in configured} for c in s.capabilities], "rules": rules(s.name)}
            for s in SPECIALISTS]


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    from integrations.registry import check_health

    report = check_health(_capabilities(settings))
    endpoint = _endpoint(settings)
    if args.json:
        rows: dict[str, Any] = {name: {"ok": h.ok, "detail": h.detail} for name, h in report.items()}
        if endpoint is not None:
            rows["model endpoint"] = {"detail": " / ".join(endpoint.lines()), **endpoint.as_json()}
        print(json.dumps(rows))
    else:
        for name, health in report.items():
            print(f"{'ok  ' if health.ok else 'FAIL'} {name:<18} {health.detail}")
        if endpoint is None:
            print(f"     {'model endpoint':<18} not configured (set OPENAI_BASE_URL to use a model; nothing was asked)")
        else:
            print("\n".join([*endpoint.lines(), _pricing(settings, endpoint.model)]))
    return 0 if all(h.ok for h in report.values()) and (endpoint is None or endpoint.ok) else 1


def _endpoint(settings: Settings) -> "EndpointReport | None":
    """The model endpoint's models and one tool-call probe, within CHECK_TIMEOUT_S a request and never retried;
    None without OPENAI_BASE_URL (no probe is made)."""
    from redis import Redis

    from agents.endpoint_check import check_endpoint
    from jobs.runtime import make_llm

    model = settings.openai
    if not model.base_url:
        return None
    timeout_s = min(model.timeout_s, CHECK_TIMEOUT_S)
    bounded = settings.model_copy(update={"openai": model.model_copy(update={"timeout_s": timeout_s, "max_retries": 0})})
    llm = make_llm(bounded, Redis.from_url(settings.redis_url))
    assert llm is not None
    key = model.api_key.get_secret_value() if model.api_key else None
    return check_endpoint(llm, model.base_url, model.model_for("plan"), key, timeout_s)


def _pricing(settings: Settings, model: str) -> str:
    from agents.cost_report import free_line
    from agents.costs import PriceTable, local_endpoint

    prices = PriceTable.parse(settings.budget.prices, local=local_endpoint(settings.openai.base_url))
    price = prices.lookup(model)
    said = (free_line(model, prices.unpriced(model)) if price is None
            else f"{model}: ${price.prompt_per_1k:g} / ${price.completion_per_1k:g} per 1k tokens in / out")
    return f"ok   {'pricing':<18} {said}"
