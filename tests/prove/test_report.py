"""The proof's table and JSON: what a reader (or CI) relies on."""
from __future__ import annotations

import json

from harness.prove.report import Report, Row


def test_a_clean_row_passes_and_any_loss_duplicate_5xx_or_effect_fails():
    assert Row("x", 10).passed
    for bad in ({"lost": 1}, {"duplicated": 1}, {"errors_5xx": 1}, {"unapproved_effects": 1}, {"failed_checks": ("why",)}):
        assert not Row("x", 10, **bad).passed, bad
    # a 503 while Redis is down is the intended answer, not an error
    assert Row("x", 10, retried_503=7).passed


def test_totals_table_and_json_agree(tmp_path):
    report = Report(mode="quick")
    report.add(Row("worker SIGKILL storm", 200, max_recovery_s=4.5))
    report.add(Row("redis crash", 120, lost=1, retried_503=30, max_recovery_s=3.0, notes="one stuck"))
    totals = report.totals()
    assert totals["attempts"] == 320 and totals["lost"] == 1 and totals["retried_503"] == 30
    assert totals["max_recovery_s"] == 4.5 and totals["failed"] == 1 and not report.passed
    data = report.as_json()
    assert data["totals"] == totals and data["passed"] is False
    assert [(s["scenario"], s["lost"], s["passed"]) for s in data["scenarios"]] == [
        ("worker SIGKILL storm", 0, True), ("redis crash", 1, False)]
    table = report.table()
    # the total line adds up the rows: attempts, lost, duplicated, 5xx, 503s, unapproved, worst recovery, verdict
    [total] = [line.split() for line in table.splitlines() if line.startswith("total")]
    assert total == ["total", "320", "1", "0", "0", "30", "0", "4.50", "FAIL"]
    assert "worker SIGKILL storm" in table and "one stuck" in table
    text, js = report.write(tmp_path)
    assert text.read_text().strip() == table
    assert json.loads(js.read_text())["totals"]["lost"] == 1


def test_an_empty_report_does_not_pass():
    assert not Report(mode="quick").passed
