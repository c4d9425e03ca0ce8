"""deputy bench / eval / prove: from a source checkout they find the harness however deputy was
started; from an installed wheel (no harness beside the product) they say how to get one."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot import harness_cli
from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_script_finds_the_harness_from_any_folder(tmp_path):
    """`deputy` as installed (not `python -m` from the checkout): the harness is not on sys.path."""
    deputy = Path(sys.executable).parent / "deputy"
    if not deputy.exists():
        pytest.skip("no deputy console script beside this interpreter")
    done = subprocess.run([str(deputy), "bench", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "queue" in done.stdout and "gateway" in done.stdout


@pytest.mark.parametrize("argv", [["bench", "queue"], ["eval", "intents"], ["prove"]])
def test_without_a_checkout_each_says_how_to_get_one(argv, monkeypatch, tmp_path, capsys):
    def missing(name: str):  # what an installed wheel sees: no harness package anywhere
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(harness_cli.importlib, "import_module", missing)
    monkeypatch.setattr(harness_cli, "SOURCE_ROOT", tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"deputy {argv[0]} runs from a source checkout" in err and "pip install -e '.[test]'" in err
