import json
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from agents.cost_report import free_models
from agents.costs import CostLedger, PriceError, PriceTable, Spend, local_endpoint, money


def test_price_table_reads_both_forms_and_overrides_the_defaults():
    compact = PriceTable.parse("gpt-4o-mini:0.001:0.002,llama3:latest:0:0")
    assert compact.cost("gpt-4o-mini", 1000, 1000) == 3_000  # micro-dollars: $0.003
    assert compact.cost("llama3:latest", 10_000, 10_000) == 0
    as_json = PriceTable.parse('{"mine": [0.5, 1.5]}')
    assert as_json.cost("mine", 2000, 1000) == 2_500_000


def test_a_model_no_price_names_is_free_with_one_warning_and_star_prices_it(caplog):
    table = PriceTable.parse("")
    assert table.cost("gpt-4o-mini-2024-07-18", 1000, 0) == table.cost("gpt-4o-mini", 1000, 0) > 0
    with caplog.at_level("WARNING", logger="agents.costs"):
        assert [table.cost("someone-elses-model", 1000, 1000) for _ in range(3)] == [0, 0, 0]
    assert table.unpriced("someone-elses-model") == "unlisted" and table.unpriced("gpt-4o") == ""
    [warning] = [r.getMessage() for r in caplog.records]
    assert "'someone-elses-model' costs nothing" in warning and "LLM_PRICES" in warning
    # the old protection, asked for: every model not listed priced like a dear one
    star = PriceTable.parse("*:0.01:0.03")
    assert star.cost("someone-elses-model", 1000, 1000) == 40_000 and star.unpriced("someone-elses-model") == ""
    assert star.cost("gpt-4o-mini-2024-07-18", 1000, 0) == table.cost("gpt-4o-mini", 1000, 0)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8799/v1", "http://localhost:11434/v1", "http://[::1]:8000/v1",
                                 "http://10.0.0.5/v1", "http://172.20.1.1:8000/v1", "http://192.168.1.20:1234/v1",
                                 "http://gpu-box.local:8000/v1"])
def test_a_local_endpoint_is_free_unless_llm_prices_names_the_model(url):
    assert local_endpoint(url)
    table = PriceTable.parse("", local=local_endpoint(url))
    # whatever a local server calls its model, even a cloud model's name
    assert table.cost("gpt-4o-mini", 1000, 1000) == 0 and table.unpriced("gpt-4o-mini") == "local"
    priced = PriceTable.parse("llama3:latest:0.001:0.002", local=True)
    assert priced.cost("llama3:latest", 1000, 1000) == 3_000 and priced.cost("qwen", 1000, 1000) == 0


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://172.32.0.1/v1", "http://8.8.8.8/v1", None, "",
                                 "http://ollama:11434/v1"])
def test_a_public_endpoint_prices_known_cloud_models_as_before(url):
    assert not local_endpoint(url)
    assert PriceTable.parse("", local=local_endpoint(url)).cost("gpt-4o", 1000, 1000) == 12_500


def test_free_calls_are_counted_per_model_and_budget_says_how_to_charge_them(redis):
    ledger = CostLedger(redis, "ws")
    for model, why in (("smollm2", "local"), ("smollm2", "local"), ("mystery", "unlisted"), ("gpt-4o", "")):
        ledger.record(Spend(run_id="r1", project="inbox", model=model, prompt_tokens=10, completion_tokens=5, cost=0,
                            day=ledger.today().isoformat(), unpriced=why))
    assert CostLedger.unpriced(ledger.month()) == {"smollm2": ("local", 2), "mystery": ("unlisted", 1)}
    assert free_models(ledger.month()) == [
        "model mystery: free (not in the price table; set LLM_PRICES to charge it)",
        "local model smollm2: free (not in the price table; set LLM_PRICES to charge it)"]


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
