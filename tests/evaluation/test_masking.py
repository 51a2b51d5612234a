"""Masking that cannot hide: each masking plugin (masking_plugins.py) is flagged and kept out of the
ranking of the leaderboard, whatever its score, while the honest baseline is ranked.

One module-scoped run: the baseline and the four plugins under the quick protocol's leaderboard
suite, shortened (1 epoch, 64 images, cheap attack budgets), then ``bench report``.
"""

import json
import re
from pathlib import Path

import pytest

from bench.cli import main
from fast_protocol import FAST

pytestmark = pytest.mark.slow  # about 90 s: five `bench run`s of the whole suite

HERE = Path(__file__).resolve().parent
MASKS = ["mask_zero", "mask_shattered", "mask_saturated", "mask_nondiff"]
SUITE = [*FAST, "attacks.pgd.steps=25", "attacks.pgd.targets=3", "attacks.apgd_t.steps=10", "attacks.apgd_t.n_target_classes=2",
         "attacks.apgd_t.n_examples=32", "attacks.square.n_queries=300", "attacks.square.n_examples=32",
         "attacks.transfer_pgd.steps=10", "leaderboard.convergence.n_examples=32", "leaderboard.convergence.steps_factor=2"]


def _sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    work = tmp_path_factory.mktemp("masking")
    mp = pytest.MonkeyPatch()
    mp.chdir(HERE)  # --plugin masking_plugins: a module in the working directory
    mp.syspath_prepend(str(HERE))
    common = ["--results", str(work / "results"), "--checkpoints", str(work / "ckpt"), "--quiet", *_sets(SUITE)]
    try:
        for defense in ["baseline", *MASKS]:
            assert main(["run", "--plugin", "masking_plugins", "--defense", defense, *common]) == 0
        assert main(["report", "--results", str(work / "results"), "--out", str(work / "reports")]) == 0
    finally:
        mp.undo()
    return work


def _summary(work: Path, defense: str) -> dict:
    (path,) = [p for p in (work / "results").rglob("summary.json") if f"/{defense}/" in p.as_posix()]
    return json.loads(path.read_text())


def _flags(work: Path, defense: str) -> set[str]:
    s = _summary(work, defense)
    return {c["name"] for c in s["cross_attack_checks"] + s["attack_checks"] if c["status"] == "flag"}


def test_the_suite_ran_with_every_kind_of_attack(masked):
    s = _summary(masked, "baseline")
    assert s["attacks"] == sorted(["fgsm", "pgd", "square", "transfer_pgd", "pgd_convergence"])
    assert s["worst_case"]["linf"]["0.1"]["attacks"] == sorted(s["attacks"])
    # the convergence rerun runs at its eps only (FAST: 0.1), so eps 0.3 is the worst case over the others
    assert s["worst_case"]["linf"]["0.3"]["attacks"] == sorted(set(s["attacks"]) - {"pgd_convergence"})
    assert _flags(masked, "baseline") == set()


@pytest.mark.parametrize("defense,expected", [
    ("mask_zero", {"gradients_informative", "loss_increases_along_path"}),
    ("mask_shattered", {"loss_increases_along_path"}),
    ("mask_saturated", {"gradients_informative"}),
    ("mask_nondiff", {"gradients_informative", "loss_increases_along_path"}),
])
def test_each_masking_defense_is_flagged(masked, defense, expected):
    assert expected <= _flags(masked, defense)


def test_flagged_defenses_are_listed_apart_with_reason_and_next_attack(masked):
    text = (masked / "reports" / "leaderboard.md").read_text()
    ranked, _, apart = text.partition("Not ranked")
    ranked_rows = [line for line in ranked.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [line.split("|")[2].strip() for line in ranked_rows] == ["baseline"]
    for defense in MASKS:
        (row,) = [line for line in apart.splitlines() if line.startswith(f"| {defense}(baseline) |")]
        assert "**" in row and ("square" in row or "transfer_pgd" in row)  # why, and what to run next
    assert "worst case over" in text and "square (n = 32)" in text and "transfer_pgd (n = 64)" in text
    assert "draws noise" not in text  # the randomised-defense caveat only where a flagged defense is randomised
    assert "pgd_convergence (n = 32, eps 0.1 only)" in text  # the rerun ran at part of the grid
