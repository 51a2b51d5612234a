"""Protocol overrides that make the quick protocol take seconds, shared by tests that run `bench`."""

# Overrides that make the quick protocol take seconds: 1 epoch, 64 test images, 3 PGD steps, one targeted run.
FAST = [
    "training.epochs=1",
    "evaluation.n_examples=64",
    "evaluation.batch_size=64",
    "attacks.pgd.steps=3",
    "attacks.pgd.targets=1",  # one targeted run: the path is exercised, at a tenth of the cost
    "attacks.pgd_l2.steps=3",
    "threat_models.linf.eps=[0.0, 0.1, 0.3]",
    "leaderboard.convergence.eps=[0.1]",  # the rerun's eps must be on the grid
    "threat_models.l2.eps=[0.0, 1.0, 3.0]",
]

# FAST with a width-8 CNN trained on 400 images (val_fraction 0.9 of the 4000): a model near chance,
# in a fraction of the time, for tests of the plumbing (records, files, diagnostics), not of accuracy.
TINY = [*FAST, "model.width=8", "dataset.val_fraction=0.9"]
