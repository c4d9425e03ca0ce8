import json
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from agents.costs import CostLedger, PriceError, PriceTable, Spend, money


def test_price_table_reads_both_forms_and_overrides_the_defaults():
    compact = PriceTable.parse("gpt-4o-mini:0.001:0.002,llama3:latest:0:0")
    assert compact.cost("gpt-4o-mini", 1000, 1000) == 3_000  # micro-dollars: $0.003
    assert compact.cost("llama3:latest", 10_000, 10_000) == 0
    as_json = PriceTable.parse('{"mine": [0.5, 1.5]}')
    assert as_json.cost("mine", 2000, 1000) == 2_500_000


def test_unknown_models_are_priced_like_the_dearest_known_one():
    table = PriceTable.parse("")
    assert table.cost("gpt-4o-mini-2024-07-18", 1000, 0) == table.cost("gpt-4o-mini", 1000, 0)
    dearest = max(table.cost(m, 1000, 1000) for m in table.prices)
    assert table.cost("someone-elses-model", 1000, 1000) == dearest


def test_unreadable_prices_say_how_to_write_them():
    with pytest.raises(PriceError, match="model:usd_per_1k_in:usd_per_1k_out"):
        PriceTable.parse("gpt-4o-mini=cheap")
    with pytest.raises(PriceError):
        PriceTable.parse("x:-1:0")


def test_ledger_adds_up_per_run_project_model_and_local_day(redis):
    # 23:30 in Lisbon on 31 March is still March there, and already 1 April nowhere yet
    clock = lambda: datetime(2025, 3, 31, 22, 30, tzinfo=timezone.utc)  # noqa: E731
    ledger = CostLedger(redis, "ws", "Europe/Lisbon", clock=clock)
    assert ledger.today() == date(2025, 3, 31)
    for run, project, cost in (("r1", "inbox", 1_000), ("r1", "inbox", 2_000), ("r2", "clients", 500)):
        ledger.record(Spend(run_id=run, project=project, model="gpt-4o-mini", prompt_tokens=100, completion_tokens=10,
                            cost=cost, day=ledger.today().isoformat()))
    day = ledger.day()
    assert day["total"] == 3_500 and day["calls"] == 3
    assert CostLedger.breakdown(day, "p:") == {"inbox": 3_000, "clients": 500}
    assert ledger.project_month("clients") == 500
    assert ledger.run("r1").cost == 3_000 and ledger.run("r1").calls == 2 and ledger.run("r1").prompt_tokens == 200
    series = ledger.daily_series(3)
    assert [d for d, _ in series] == [date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)]
    assert [v for _, v in series] == [0, 0, 3_500]
    # the next local day starts empty
    tomorrow = CostLedger(redis, "ws", "Europe/Lisbon", clock=lambda: datetime(2025, 4, 1, 0, 30, tzinfo=ZoneInfo("Europe/Lisbon")))
    assert tomorrow.day() == {} and tomorrow.month() == {}


def test_money_keeps_small_amounts_visible():
    assert money(123) == "$0.0001"
    assert money(10_000) == "$0.01" and money(0) == "$0.00"
    assert money(12_340_000) == "$12.34"


def test_deputy_costs_prints_spend_against_caps(redis, settings, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("BUDGET_CAPS", "clients:0.05:5")
    ledger = CostLedger(redis, settings.workspace, settings.timezone)
    for run, project, model, cost in (("r1", "inbox", "gpt-4o-mini", 1_234), ("r2", "clients", "gpt-4o", 56_000)):
        ledger.record(Spend(run_id=run, project=project, model=model, prompt_tokens=1000, completion_tokens=200, cost=cost,
                            day=ledger.today().isoformat()))
    assert main(["costs", "--days", "7"]) == 0
    table = capsys.readouterr().out
    assert "clients              $0.056      $0.05     $0.056        $5.00      1" in table
    assert "gpt-4o                       $0.056     $0.056" in table
    assert main(["costs", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {p["project"]: p["today"] for p in data["projects"]} == {"clients": 0.056, "inbox": 0.001234}
    assert data["tokens_today"] == {"prompt": 2000, "completion": 400} and len(data["days"]) == 14
