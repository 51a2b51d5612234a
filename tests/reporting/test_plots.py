"""The report figures: one per (protocol, threat model), 1200 px wide, a fixed colour per defense."""

from __future__ import annotations

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from bench.reporting import plots
from bench.reporting.tables import WORST


def _table(defenses: list[str], threats=("linf", "l2"), seeds: int = 1) -> pd.DataFrame:
    rows = []
    for threat in threats:
        for k, defense in enumerate(defenses):
            for attack in ("fgsm", "pgd", WORST):
                for eps in (0.0, 0.01, 0.03, 0.1):
                    acc = max(0.0, 0.9 - (k + 1) * eps * 3 - (0.05 if attack == WORST else 0.0))
                    rows.append({"protocol": "toy", "protocol_hash": "0123456789ab", "defense": defense, "attack": attack,
                                 "threat_model": threat, "eps": eps, "seeds": seeds, "n_examples": 100,
                                 "clean_mean": 0.9 - 0.01 * k, "clean_std": 0.01 if seeds > 1 else 0.0,
                                 "robust_mean": acc, "robust_std": 0.02 if seeds > 1 else 0.0, "top5_mean": np.nan,
                                 "mrr_mean": np.nan, "flags": "gradient_masking" if defense == "quantize(baseline)" else ""})
    return pd.DataFrame(rows)


def _line_colors(ax) -> dict[str, str]:
    return {line.get_label().replace(" (flagged)", ""): to_hex(line.get_color()) for line in ax.get_lines()}


def _texts(fig) -> str:
    """Every text of a figure (its header's title and subtitle, the panels' titles and labels), one a line."""
    return "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text())


def _title(fig) -> str:
    """The header's title line (bold, the largest text)."""
    bold = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text() and t.get_fontweight() == "bold"
            and t.get_fontsize() >= 13]
    return bold[0].get_text()


def test_defense_color_is_fixed_whatever_the_other_defenses():
    assert len(set(plots.PALETTE)) >= 12
    known = [plots.defense_color(name) for name in plots.KNOWN_DEFENSES]
    assert len(set(known)) == len(known)  # every built-in defense has its own colour
    assert plots.defense_color("gaussian_blur(baseline)") == plots.defense_color("gaussian_blur")
    assert plots.defense_color("neural_sim [simulated V1]") == plots.defense_color("neural_sim")
    assert plots.defense_color("my_plugin") == plots.defense_color("my_plugin") in plots.PALETTE
    known_markers = [plots.defense_marker(name) for name in plots.KNOWN_DEFENSES]
    assert len(set(known_markers)) == len(known_markers)
    assert plots.defense_marker("heat_blur(baseline)") == plots.defense_marker("heat_blur")


def test_one_palette_for_report_paper_and_analysis_figures():
    from bench.analysis import plots as analysis_plots
    from bench.figures import plotting
    from bench.reporting import style

    assert plots.defense_color is style.defense_color is plotting.defense_color is analysis_plots.defense_color
    assert style.display_label("baseline") == "baseline"
    assert style.display_label("neural_sim [simulated V1]", "shuffled target") == "neural_sim [simulated V1], shuffled target"


def test_one_figure_per_protocol_and_threat_model_same_colours(tmp_path, monkeypatch):
    drawn = []
    save = plots._save

    def keep(fig, out_dir, stem, pdf=False):
        drawn.append((stem, _line_colors(fig.axes[0])))
        return save(fig, out_dir, stem, pdf)

    monkeypatch.setattr(plots, "_save", keep)
    a = plots.accuracy_vs_eps(_table(["baseline", "adv_train", "quantize(baseline)"], threats=("linf",), seeds=3), tmp_path / "a",
                              pdf=True)
    b = plots.accuracy_vs_eps(_table(["adv_train", "pixel_sim"], threats=("linf", "l2")), tmp_path / "b")
    assert sorted(p.name for p in a) == ["accuracy_vs_eps_toy-0123456789ab_linf.pdf", "accuracy_vs_eps_toy-0123456789ab_linf.png"]
    assert sorted(p.name for p in b if p.suffix == ".png") == ["accuracy_vs_eps_toy-0123456789ab_l2.png",
                                                              "accuracy_vs_eps_toy-0123456789ab_linf.png"]
    first, second = drawn[0][1], drawn[1][1]
    assert first["adv_train"] == second["adv_train"] == plots.defense_color("adv_train")
    assert first["baseline"] == plots.defense_color("baseline") != first["adv_train"]
    assert set(first) == {"baseline", "adv_train", "quantize(baseline)"}  # only the worst case, one line per defense
    for path in a + b:
        if path.suffix == ".png":
            assert abs(mpimg.imread(path).shape[1] - 1200) <= 50


def test_flagged_dashed_std_bands_with_seeds_and_wilson_bands_with_one(tmp_path, monkeypatch):
    figs = []
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, stem, pdf=True: figs.append(fig) or [])
    plots.accuracy_vs_eps(_table(["baseline", "quantize(baseline)"], threats=("linf",), seeds=3), tmp_path)
    ax = figs[0].axes[0]
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
    assert styles == {"baseline": "-", "quantize(baseline) (flagged)": "--"}
    assert len(ax.collections) == 2  # one error band per defense
    # eps on a categorical axis: a tick per grid point, evenly spaced, labelled with its value, said not to scale
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.01", "0.03", "0.1"]
    assert list(ax.get_xticks()) == [0, 1, 2, 3] and "not to scale" in ax.get_xlabel()
    assert list(ax.get_lines()[0].get_xdata()) == [0, 1, 2, 3]
    figs.clear()
    plots.accuracy_vs_eps(_table(["baseline"], threats=("linf",), seeds=1), tmp_path)
    (band,) = figs[0].axes[0].collections  # a single seed: the 95 % Wilson interval over the examples
    (line,) = figs[0].axes[0].get_lines()
    path = band.get_paths()[0].vertices
    assert path[:, 1].min() < line.get_ydata().min() + 1e-9 and path[:, 1].max() > line.get_ydata().max() - 1e-9
    assert "Wilson" in _texts(figs[0])


def test_details_and_tradeoff(tmp_path):
    table = _table(["baseline", "adv_train", "quantize(baseline)"])
    details = plots.details(table, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in details) == sorted(
        f"detail/toy-0123456789ab_{t}_{d}.png" for t in ("l2", "linf") for d in ("adv_train", "baseline", "quantize_baseline"))
    trade = plots.tradeoff(table, tmp_path, {("toy", "linf"): 0.03})
    assert [p.name for p in trade] == ["tradeoff_toy-0123456789ab.png"]  # PNG only unless asked for
    trade = plots.tradeoff(table, tmp_path, {("toy", "linf"): 0.03}, pdf=True)
    assert [p.name for p in trade] == ["tradeoff_toy-0123456789ab.png", "tradeoff_toy-0123456789ab.pdf"]
    assert abs(mpimg.imread(trade[0]).shape[1] - 1200) <= 50


def _flat(fig) -> str:
    """The figure's texts with every run of white space (line breaks of a wrapped subtitle) as one space."""
    return " ".join(_texts(fig).split())


def test_titles_say_where_an_attack_of_the_worst_case_ran(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    shown = {}
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, stem, pdf=True: shown.setdefault(stem, fig) and [])
    table = _table(["baseline"], threats=("linf",))
    rerun = table[(table["attack"] == "pgd") & table["eps"].isin([0.0, 0.03])].assign(attack="pgd_convergence")
    table = pd.concat([table, rerun], ignore_index=True)
    plots.accuracy_vs_eps(table, tmp_path)
    fig = shown.popitem()[1]
    # a one-line title in words; the attacks in the small subtitle
    assert _title(fig) == "Robust accuracy under the strongest attack, L∞"
    assert "worst case per image over fgsm, pgd (+ pgd_convergence at eps 0.03)" in _flat(fig)
    # at an eps where the rerun did not run, the trade-off names only what did
    plots.tradeoff(table, tmp_path, {("toy", "linf"): 0.1})
    fig = shown.popitem()[1]
    assert _title(fig) == "Clean vs robust accuracy per defense, L∞ eps = 0.1"
    assert "worst case per image over fgsm, pgd bars" in _flat(fig)
    plots.tradeoff(table, tmp_path, {("toy", "linf"): 0.03})
    assert "worst case per image over fgsm, pgd, pgd_convergence bars" in _flat(shown.popitem()[1])
    # the bars' caption: Wilson for one seed, and said so where seeds are mixed
    table.loc[table["defense"] == "baseline", "seeds"] = 1
    mixed = pd.concat([table, table.assign(defense="adv_train", seeds=3)], ignore_index=True)
    plots.tradeoff(mixed, tmp_path, {("toy", "linf"): 0.03})
    assert "bars = 95 % interval (bootstrap over seeds and images; Wilson for one seed)" in _flat(shown.popitem()[1])
    plots.tradeoff(table, tmp_path, {("toy", "linf"): 0.03})
    assert "bars = 95 % Wilson interval over the 100 images" in _flat(shown.popitem()[1])
    plt.close("all")


def test_detail_titles_state_images_seeds_and_bands(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    shown = {}
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, stem, pdf=True: shown.setdefault(stem, fig) and [])
    plots.details(_table(["baseline"], threats=("linf",), seeds=3), tmp_path)
    fig = shown.popitem()[1]
    assert _title(fig) == "baseline: robust accuracy per attack, L∞"
    assert "toy (0123456789ab), 3 seeds, 100 test images; band = 95 % interval (bootstrap over seeds and images)" in _flat(fig)
    table = _table(["baseline"], threats=("linf",))
    rerun = table[(table["attack"] == "pgd") & table["eps"].isin([0.0, 0.03])].assign(attack="pgd_convergence", n_examples=20)
    plots.details(pd.concat([table, rerun], ignore_index=True), tmp_path)
    fig = shown.popitem()[1]
    assert "1 seed, 100 test images (20 for pgd_convergence); band = 95 % Wilson interval over the 100 images" in _flat(fig)
    # an attack run at part of the grid is drawn there (at its grid points' places), and its label says where
    ax = fig.axes[0]
    lines = {line.get_label(): list(line.get_xdata()) for line in ax.get_lines()}
    assert lines["pgd_convergence (eps 0.03 only)"] == [0, 2] and lines["pgd"] == [0, 1, 2, 3]
    assert set(lines) == {"fgsm", "pgd", "pgd_convergence (eps 0.03 only)", "worst case"}
    plt.close("all")


def test_pareto_front():
    points = [(90, 10), (80, 50), (85, 40), (70, 45), (90, 5), (60, 50)]
    assert plots.pareto_front(points) == [1, 2, 0]  # by clean accuracy; (70, 45), (90, 5), (60, 50) are dominated


def test_a_flagged_defense_is_never_on_the_pareto_front(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    shown = {}
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, stem, pdf=True: shown.setdefault(stem, fig) and [])
    table = _table(["baseline", "adv_train", "quantize(baseline)"])
    flagged = table["defense"] == "quantize(baseline)"
    table.loc[flagged, "clean_mean"] = 0.99  # most accurate of all, so it would be on an unfiltered front
    table.loc[flagged, "robust_mean"] = 0.95
    plots.tradeoff(table, tmp_path, {("toy", "linf"): 0.03})
    ax = shown.popitem()[1].axes[0]
    names = [t.get_text() for t in ax.texts if t.get_text()]
    assert "quantize(baseline) (flagged)" in names and "baseline *" in names  # it dominates both, yet only trusted points count
    (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert 99.0 not in list(front.get_xdata())
    plt.close("all")


def _labels(fig) -> dict[str, tuple[float, float]]:
    """The trade-off's direct labels: text -> the data point it names (over every panel)."""
    return {t.get_text(): tuple(t.xy) for ax in fig.axes for t in ax.texts if t.get_text()}


def _label_boxes(fig) -> list:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for ax in fig.axes for t in ax.texts if t.get_text()]


def test_tradeoff_labels_every_defense_by_its_point_without_collisions(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    shown = {}
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, stem, pdf=True: shown.setdefault(stem, fig) and [])
    few = ["baseline", "adv_train", "quantize(baseline)"]
    plots.tradeoff(_table(few), tmp_path, {("toy", "linf"): 0.03})
    fig = shown.popitem()[1]
    assert len(fig.axes) == 1 and fig.axes[0].get_legend() is None  # spread out: one panel, no legend to decode
    assert {text.split(" ")[0] for text in _labels(fig)} == set(few)
    # a crowd: 8 defenses within a point of each other, two far away -> a zoomed panel, every one labelled once
    crowd = [f"d{k}" for k in range(8)]
    table = _table(["adv_train", "pixel_sim"] + crowd, threats=("linf",))
    at = table["eps"] == 0.03
    for k, name in enumerate(crowd):
        rows = at & (table["defense"] == name)
        table.loc[rows, "clean_mean"] = 0.97 + 0.001 * (k % 3)
        table.loc[rows, "robust_mean"] = 0.02 + 0.01 * k
    table.loc[at & (table["defense"] == "adv_train"), ["clean_mean", "robust_mean"]] = [0.97, 0.9]
    table.loc[at & (table["defense"] == "pixel_sim"), ["clean_mean", "robust_mean"]] = [0.93, 0.3]
    plots.tradeoff(table, tmp_path, {("toy", "linf"): 0.03})
    fig = shown.popitem()[1]
    overview, zoom = fig.axes
    labels = _labels(fig)
    assert sorted(text.split(" ")[0] for text in labels) == sorted(["adv_train", "pixel_sim"] + crowd)
    assert {t.get_text().split(" ")[0] for t in zoom.texts} == set(crowd)  # the crowd is named in the zoom
    assert not [t for t in zoom.texts if not t.arrow_patch]  # each with a leader line to its point
    boxes = _label_boxes(fig)
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]  # no two labels collide
    x0, x1 = zoom.get_xlim()
    assert x0 >= 96.0 and zoom.get_ylim()[1] < 20  # zoomed on the crowd
    plt.close("all")


def test_seed_counts_name_the_defenses_a_partial_sweep_left_short():
    from bench.reporting.tables import seeds_text

    full = _table(["baseline", "pixel_sim"], seeds=3)
    assert seeds_text(full) == "3 seeds"
    assert seeds_text(_table(["baseline"])) == "1 seed"
    partial = pd.concat([full, _table(["heat_blur"], seeds=1)])
    assert seeds_text(partial) == "3 seeds (heat_blur: 1)"


def test_regenerated_pdfs_are_byte_identical(tmp_path):
    table = _table(["baseline", "adv_train"])
    first = plots.tradeoff(table, tmp_path / "a", {("toy", "linf"): 0.03}, pdf=True)[1].read_bytes()
    second = plots.tradeoff(table, tmp_path / "b", {("toy", "linf"): 0.03}, pdf=True)[1].read_bytes()
    assert first == second and b"CreationDate" not in first
