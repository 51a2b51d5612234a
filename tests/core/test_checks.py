

def test_eps_zero_check_allows_sampling_noise_only_for_randomised_pipelines():
    from bench.evaluation import checks

    assert checks.eps_zero_matches_clean(0.970, 0.966, 500, randomized=False)["status"] == "flag"
    ok = checks.eps_zero_matches_clean(0.970, 0.966, 500, randomized=True)
    assert ok["status"] == "pass" and abs(ok["tolerance"] - 3 * (0.97 * 0.03 / 500) ** 0.5) < 1e-12
    assert checks.eps_zero_matches_clean(0.970, 0.90, 500, randomized=True)["status"] == "flag"
