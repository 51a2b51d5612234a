

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
