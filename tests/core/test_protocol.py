from importlib import resources

import pytest

from bench.errors import ConfigError, UnknownNameError
from bench.protocol import builtin_protocols, config_hash, load_protocol


def test_builtin_protocols_load_and_hash_is_stable():
    assert {"quick", "fashion"} <= set(builtin_protocols())
    a, b = load_protocol("quick"), load_protocol("quick")
    assert a.hash == b.hash and len(a.hash) == 64
    assert a.name == "quick" and a.version >= 1


def test_override_changes_value_and_hash():
    base = load_protocol("quick")
    p = load_protocol("quick", ["training.epochs=3", "attacks.pgd.steps=7", "training.lr=1"])
    assert p.training.epochs == 3 and p.attacks["pgd"]["steps"] == 7
    assert isinstance(p.config["training"]["lr"], float) and p.training.lr == 1.0
    assert p.hash != base.hash
    assert config_hash(p.config) == p.hash


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("training.epoch=3", "unknown protocol key 'training.epoch'"),
        ("trainig.epochs=3", "keys at this level"),
        ("training.epochs=three", "is an integer"),
        ("training.epochs=2.5", "is an integer"),
        ("training.epochs", "must look like key=value"),
        ("threat_models.linf.eps=[0.3, 0.1]", "sorted ascending"),
        ("seeds=[]", "non-empty list"),
    ],
)
def test_invalid_overrides_are_refused_with_a_reason(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_protocol("quick", [override])
    assert fragment in str(info.value)


def test_overrides_may_set_keys_the_file_leaves_out_but_the_protocol_accepts(tmp_path):
    import yaml

    base = load_protocol("quick")
    assert "grad_clip" not in base.config["training"]
    p = load_protocol("quick", ["training.grad_clip=5", "attacks.fgsm.random_start=false"])
    assert p.training.grad_clip == 5.0 and p.hash != base.hash
    assert "eps" not in load_protocol("fashion").config["leaderboard"]["convergence"]
    assert load_protocol("fashion", ["leaderboard.convergence.eps=[0.05]"]).leaderboard.convergence.eps == (0.05,)
    # a whole optional section the file lacks: its own rules apply
    config = yaml.safe_load((resources.files("bench") / "protocols" / "quick.yaml").read_text())
    del config["leaderboard"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(config))
    bare = str(tmp_path / "bare.yaml")
    assert load_protocol(bare).leaderboard is None
    assert load_protocol(bare, ["leaderboard.attacks=[fgsm, pgd]"]).leaderboard.attacks == ("fgsm", "pgd")
    with pytest.raises(ConfigError, match="convergence must be a mapping with attack"):
        load_protocol(bare, ["leaderboard.attacks=[pgd]", "leaderboard.convergence.eps=[0.1]"])
    # a typo is still refused, naming every key accepted at that level, those the file leaves out too
    with pytest.raises(ConfigError, match=r"unknown protocol key 'training.grad_clipping'.*grad_clip"):
        load_protocol("quick", ["training.grad_clipping=5"])
    with pytest.raises(ConfigError, match=r"unknown protocol key 'leaderboard.convergence.tolerence'.*tolerance"):
        load_protocol("quick", ["leaderboard.convergence.tolerence=0.1"])
    with pytest.raises(ConfigError, match=r"unknown protocol key 'defaults'.*leaderboard"):
        load_protocol("quick", ["defaults.x=1"])


def test_defense_parameters_can_be_set_for_any_defense():
    p = load_protocol("quick", ["defenses.pixel_sim.alpha=7", "defenses.my_plugin.strength=0.5"])
    assert p.defense_params("pixel_sim")["alpha"] == 7.0
    assert p.defense_params("my_plugin") == {"strength": 0.5}


def test_unknown_protocol_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="valid protocols: .*quick"):
        load_protocol("quik")


def test_protocol_file_by_path(tmp_path):
    text = (resources.files("bench") / "protocols" / "quick.yaml").read_text()
    path = tmp_path / "mine.yaml"
    path.write_text(text.replace("name: quick", "name: mine"))
    assert load_protocol(str(path)).name == "mine"
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_protocol(str(tmp_path / "bad.yaml"))
    (tmp_path / "partial.yaml").write_text("name: x\nversion: 1\n")
    with pytest.raises(ConfigError, match="lacks the section"):
        load_protocol(str(tmp_path / "partial.yaml"))


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("training.schedule=bogus", "training.schedule = 'bogus' is invalid; accepted: one of 'constant', 'cosine', 'cyclic'"),
        ("training.optimizer=rmsprop", "accepted: one of 'sgd', 'adam'"),
        ("training.augment=mixup", "accepted: one of 'none', 'crop_flip'"),
        ("training.lr=0", "training.lr = 0.0 is invalid; accepted: a finite number in (0, inf)"),
        ("evaluation.curve=bogus", "evaluation.curve = 'bogus' is invalid; accepted: one of 'independent', 'survivors', 'descending'"),
        ("evaluation.n_examples=0", "evaluation.n_examples = 0 is invalid"),
        ("dataset.val_fraction=1.5", "dataset.val_fraction = 1.5 is invalid"),
        ("threat_models.linf.eps=[-0.1, 0.1]", "numbers >= 0"),
        ("threat_models.linf.eps=[0.1, 0.1]", "without repeats"),
        ("model.normalization=zscore", "accepted: dataset, none, or {mean"),
    ],
)
def test_enumerated_values_and_ranges_are_checked_at_load(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_protocol("quick", [override])
    assert fragment in str(info.value)


def test_gradient_clipping_is_optional_and_checked(tmp_path):
    text = (resources.files("bench") / "protocols" / "quick.yaml").read_text()
    assert load_protocol("quick").training.grad_clip is None
    path = tmp_path / "clip.yaml"
    path.write_text(text.replace("  schedule:", "  grad_clip: 5\n  schedule:", 1))
    assert load_protocol(str(path)).training.grad_clip == 5.0
    path.write_text(text.replace("  schedule:", "  grad_clip: 0\n  schedule:", 1))
    with pytest.raises(ConfigError, match=r"training.grad_clip = 0 is invalid; accepted: a finite number in \(0, inf\)"):
        load_protocol(str(path))


def test_the_typed_view_reads_the_file_and_the_hash_reads_the_dict_as_written():
    p = load_protocol("quick")
    assert p.training.schedule == "cosine" and p.training.epochs == 8 and p.evaluation.curve == "independent"
    assert p.eps_grid("linf")[0] == 0.0 and p.seeds == (0,) and p.model.options["width"] == 32
    assert p.config["defenses"]["neural_sim"]["recordings"] is None  # None stays None in what is hashed
    with pytest.raises(TypeError):
        p.config["training"]["epochs"] = 3  # read-only: the typed view and the hash cannot drift apart


def test_protocols_pickle_for_sweep_workers():
    import pickle

    p = load_protocol("quick", ["training.epochs=2"])
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.hash == p.hash and q.training.epochs == 2


@pytest.mark.parametrize("value, fragment", [
    ("[]", "non-empty list of positive eps values"),
    ("[0.0]", "non-empty list of positive eps values"),
    ("headline", "convergence.eps is a list"),
])
def test_convergence_eps_is_a_list_of_positive_values(value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_protocol("quick", [f"leaderboard.convergence.eps={value}"])


def test_convergence_rerun_runs_at_its_eps_and_refuses_eps_off_the_grid():
    from bench.pipeline import attack_eps_grid, check_protocol, make_attack
    proto = load_protocol("quick")
    rerun = make_attack(proto, "pgd_convergence")
    assert proto.leaderboard.convergence.eps == (0.1, 0.15, 0.2)
    assert attack_eps_grid(proto, rerun) == [0.0, 0.1, 0.15, 0.2]  # eps 0 stays: its check costs nothing
    assert attack_eps_grid(proto, make_attack(proto, "pgd")) == proto.eps_grid("linf")
    whole = load_protocol("quick", ["leaderboard.convergence.eps=[0.05, 0.1, 0.15, 0.2, 0.3]"])
    assert attack_eps_grid(whole, make_attack(whole, "pgd_convergence")) == whole.eps_grid("linf")
    moved = load_protocol("quick", ["threat_models.linf.eps=[0.0, 0.1, 0.3]"])
    with pytest.raises(ConfigError, match=r"convergence.eps has 0.15, 0.2, not in the linf grid .*accepted: 0.1, 0.3"):
        check_protocol(moved)


def test_the_convergence_rerun_walks_every_eps_afresh_whatever_the_protocols_curve(tmp_path):
    """Walking the grid from the largest eps down, the rerun is still the independent check on a subset."""
    import torch

    from bench.engine import EngineOptions, EvaluationSet, Target
    from bench.engine import evaluate_model
    from bench.pipeline import make_attack, make_defense

    proto = load_protocol("quick", ["evaluation.curve=descending", "leaderboard.convergence.n_examples=8", "attacks.pgd.steps=2",
                                    "leaderboard.convergence.steps_factor=1"])
    assert proto.evaluation.curve == "descending"
    rerun = make_attack(proto, "pgd_convergence")
    assert rerun.curve == "independent" and make_attack(proto, "pgd").curve is None
    torch.manual_seed(0)
    from bench.data.embedded import mnist_digits

    digits = mnist_digits()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    x, y = digits.test_x[:8].float() / 255, digits.test_y[:8]
    target = Target(make_defense(proto, "baseline"), net, {"weights_sha256": "0" * 64, "training": {"train_seconds": 0.0}})
    data = EvaluationSet(x, y, digits, 10)
    done = evaluate_model(proto, target, data, 0, [rerun], EngineOptions(torch.device("cpu")))
    (record,) = done.records
    assert record.metrics.curve == "independent"
    assert {"monotone_in_eps", "eps_zero_matches_clean"} <= {c.name for c in record.checks}
