

def test_eps_zero_check_allows_sampling_noise_only_for_randomised_pipelines():
    from bench.evaluation import checks

    assert checks.eps_zero_matches_clean(0.970, 0.966, 500, randomized=False)["status"] == "flag"
    ok = checks.eps_zero_matches_clean(0.970, 0.966, 500, randomized=True)
    assert ok["status"] == "pass" and abs(ok["tolerance"] - 3 * (0.97 * 0.03 / 500) ** 0.5) < 1e-12
    assert checks.eps_zero_matches_clean(0.970, 0.90, 500, randomized=True)["status"] == "flag"


def test_eps_zero_check_counts_examples_not_float_bits():
    """On a GPU the two float32 means of the same 946 of 1000 examples differed in the last bits and were flagged."""
    import torch

    from bench.evaluation import checks

    hits = torch.zeros(1000, dtype=torch.bool)
    hits[:946] = True
    a, b = hits.float().mean().item(), 946 / 1000
    assert checks.eps_zero_matches_clean(a, b + 3e-8, 1000)["status"] == "pass"
    assert checks.eps_zero_matches_clean(0.946, 0.945, 1000)["status"] == "flag"  # one example apart


def test_a_partial_leaderboard_suite_is_provisional_not_ranked_with_its_completing_command(tmp_path):
    import shutil
    from pathlib import Path

    from bench.records.results import load_results
    from bench.reporting import write_report

    reference = Path(__file__).resolve().parents[2] / "results" / "reference" / "quick-8e8acdc4f3c7"
    for defense in ("baseline", "pixel_sim"):
        shutil.copytree(reference / defense / "seed0", tmp_path / "quick-8e8acdc4f3c7" / defense / "seed0")
    partial = tmp_path / "quick-8e8acdc4f3c7" / "pixel_sim" / "seed0"
    for name in ("apgd_t.json", "square.json", "summary.json"):
        (partial / name).unlink()

    def suite_checks(model):
        return [c for c in model.summary.cross_attack_checks if c.name.startswith("leaderboard_suite_complete")]

    models = {m.folder.parent.name: m for m in load_results(tmp_path).models}
    assert all(c.passed for c in suite_checks(models["baseline"]))  # the whole suite (its summary.json may predate the check)
    [part] = suite_checks(models["pixel_sim"])  # no summary.json: recomputed from the records
    assert part.name == "leaderboard_suite_complete_linf" and part.status == "flag" and part.threat_model == "linf"
    assert part.numbers["missing"] == ["apgd_t", "square"] and "overstates robustness" in part.detail
    board = write_report(tmp_path, tmp_path / "reports")[2].read_text()  # leaderboard.md
    ranked, apart = board.split("Provisional, not ranked:", 1)
    provisional, flagged = apart.split("Not ranked: a sanity check suspects", 1) if "Not ranked:" in apart else (apart, "")
    assert "| pixel_sim |" not in ranked + flagged and "| pixel_sim |" in provisional  # incomplete, not suspected of masking
    row = provisional.split("| pixel_sim |")[1].split("\n")[0]
    # an older version of quick: its command names the protocol (its records' source is not a path a user has)
    assert "| apgd_t, square | `bench run --protocol quick --defense pixel_sim --seed 0` |" in row
    import pandas as pd  # the same model as a table: one status per defense, the same as the Markdown's

    csv = pd.read_csv(tmp_path / "reports" / "leaderboard.csv")
    status = csv.groupby("defense")["status"].first().to_dict()
    assert status["pixel_sim"] == "provisional" and set(status) == {"baseline", "pixel_sim"}
    assert csv.loc[csv["defense"] == "pixel_sim", "next"].str.contains("bench run --protocol quick").all()
