"""`deputy capabilities` (what Deputy can do, how carefully, and which specialist may do it) and `deputy check`
(connector health)."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from kernel.settings import Settings

if TYPE_CHECKING:
    from agents.policy import Policy


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
    if args.json:
        print(json.dumps({name: {"ok": h.ok, "detail": h.detail} for name, h in report.items()}))
    else:
        for name, health in report.items():
            print(f"{'ok  ' if health.ok else 'FAIL'} {name:<18} {health.detail}")
    return 0 if all(h.ok for h in report.values()) else 1
