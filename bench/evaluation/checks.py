"""Sanity checks of an evaluation (Carlini et al. 2019; AutoAttack's checks).

Each check returns a flag instead of silently passing: ``{"name", "status": "pass"|"flag",
"detail", ...numbers}``. Checks never change a result; they say when not to trust it.
"""

from __future__ import annotations

import math

from typing import Any

import torch


def check(name: str, ok: bool, detail: str, **numbers: Any) -> dict[str, Any]:
    return {"name": name, "status": "pass" if ok else "flag", "detail": detail, **numbers}


# What to run when a check flags: the attack that would expose what the flag suspects. Reports
# show it beside every flagged defense (docs/methods.md#8-sanity-checks).
NEXT_ATTACK = {
    "gradients_informative": "square and transfer_pgd (no gradients of the target), or declare a differentiable "
                             "approximation in attack_view (BPDA)",
    "loss_increases_along_path": "square and transfer_pgd, then an adaptive attack on a smoothed attack_view (BPDA/EOT)",
    "unbounded_attack_succeeds": "square with more queries, and pgd with loss margin on an adaptive attack_view",
    "attack_converged": "the attack with more steps and restarts (leaderboard.convergence), or apgd_t",
    "white_box_beats_black_box": "an adaptive white-box attack (BPDA or EOT in attack_view); meanwhile the black-box figure "
                                 "is the worst case",
    "iterative_beats_single_step": "pgd with loss margin and a cosine step schedule, or apgd_ce",
    "monotone_in_eps": "pgd with more restarts (the per-example worst case over smaller eps is reported meanwhile)",
    "repeated_passes_agree": "declare the defense randomized so that gradient attacks use EOT",
    "leaderboard_suite_complete": "the rest of the suite: bench run --defense <defense> --seed <seed> (without --attack)",
    "eps_zero_matches_clean": "check the attack returns the clean image at eps 0 (a bug, not masking)",
    "adversarial_examples_valid": "fix the attack: invalid examples are counted as failed attacks",
}


# What each check suspects when it flags, in words (reports write one line per flagged defense from it),
# in the order reports list them.
CHECK_WORDS = {
    "gradients_informative": "its input gradients are zero or non-finite",
    "loss_increases_along_path": "gradient steps raise the loss no more than random steps",
    "white_box_beats_black_box": "a black-box attack beats the gradient attacks",
    "unbounded_attack_succeeds": "an unbounded attack does not break it",
    "iterative_beats_single_step": "PGD leaves more accuracy than FGSM",
    "attack_converged": "a longer attack run lowers the accuracy further",
    "monotone_in_eps": "accuracy rises with eps",
    "repeated_passes_agree": "two passes on the same image disagree",
    "eps_zero_matches_clean": "accuracy at eps 0 differs from the clean accuracy",
    "adversarial_examples_valid": "some adversarial examples were invalid",
    "leaderboard_suite_complete": "part of the leaderboard suite has not run",
}


def check_words(name: str) -> str:
    """What a flagged check suspects, in words (names with a threat-model suffix included)."""
    for base, words in CHECK_WORDS.items():
        if name == base or name.startswith(base + "_"):
            return words
    return name.replace("_", " ")


def next_attack(check_name: str) -> str:
    """The attack to run next after ``check_name`` flags (names with a threat-model suffix included)."""
    for name, advice in NEXT_ATTACK.items():
        if check_name == name or check_name.startswith(name + "_"):
            return advice
    return "a stronger or adaptive attack (docs/methods.md#8-sanity-checks)"


def adversarial_validity(n_checked: int, n_invalid: int, worst_excess: float) -> dict[str, Any]:
    return check(
        "adversarial_examples_valid",
        n_invalid == 0,
        "every adversarial example is finite, inside [0, 1] and within eps"
        if n_invalid == 0
        else f"{n_invalid} of {n_checked} adversarial examples were invalid and counted as failed attacks",
        n_checked=n_checked,
        n_invalid=n_invalid,
        worst_norm_excess=worst_excess,
    )


def eps_zero_matches_clean(clean_accuracy: float, eps0_accuracy: float | None, n: int = 0, randomized: bool = False) -> dict[str, Any] | None:
    """Exact for deterministic pipelines (the same number of the ``n`` examples: a float32 mean
    reduced on a GPU can differ from another in the last bits); a randomised one draws afresh,
    so up to three binomial standard errors of the clean accuracy over ``n`` examples."""
    if eps0_accuracy is None:
        return None
    exact = 0.5 / n if n > 0 else 1e-9
    tolerance = 3 * math.sqrt(max(clean_accuracy * (1 - clean_accuracy), 1e-4) / max(n, 1)) if randomized else exact
    ok = abs(clean_accuracy - eps0_accuracy) <= tolerance
    detail = f"accuracy at eps=0 is {eps0_accuracy:.4f}, clean accuracy {clean_accuracy:.4f}"
    if randomized:
        detail += f" (randomised pipeline: tolerance {tolerance:.4f}, 3 standard errors over {n} examples)"
    return check("eps_zero_matches_clean", ok, detail, clean_accuracy=clean_accuracy, eps0_accuracy=eps0_accuracy, tolerance=tolerance)


def monotone_in_eps(eps: list[float], independent_accuracy: list[float], tolerance: float = 0.005) -> dict[str, Any]:
    """Each eps is attacked independently: a larger budget that fools fewer examples means a weak attack."""
    rises = [(eps[i], eps[i + 1], independent_accuracy[i + 1] - independent_accuracy[i])
             for i in range(len(eps) - 1) if independent_accuracy[i + 1] > independent_accuracy[i] + tolerance]
    detail = ("accuracy falls monotonically with eps" if not rises else
              "accuracy rises with eps at " + ", ".join(f"{a:g}->{b:g} (+{d:.3f})" for a, b, d in rises) +
              "; the attack is weak or unstable (reported robust accuracy takes the per-example worst case over smaller eps)")
    return check("monotone_in_eps", not rises, detail, independent_accuracy=independent_accuracy)


def validate_adversarial(x: torch.Tensor, x_adv: torch.Tensor, eps: float, threat, rtol: float = 1e-5, atol: float = 1e-6) -> tuple[torch.Tensor, float]:
    """Boolean mask of valid adversarial examples and the worst norm excess over eps.

    Valid: the right shape, finite, inside [0, 1], and (for norm-bounded threat models)
    within eps up to float rounding."""
    if x_adv.shape != x.shape:
        raise ValueError(f"attack returned shape {tuple(x_adv.shape)} for inputs of shape {tuple(x.shape)}")
    finite = torch.isfinite(x_adv.flatten(1)).all(dim=1)
    inside = ((x_adv >= 0) & (x_adv <= 1)).flatten(1).all(dim=1)
    if not threat.bounded:
        return finite & inside, 0.0
    norms = threat.norm(torch.nan_to_num(x_adv - x, nan=float("inf")))
    within = norms <= eps * (1 + rtol) + atol
    excess = float((norms - eps).clamp(min=0).max()) if len(norms) else 0.0
    return finite & inside & within, excess
