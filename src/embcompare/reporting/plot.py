"""Figures for a report, each saved as PNG and SVG; every function returns the PNG paths."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
# SVGs that depend only on their data: fixed element ids, no creation date
matplotlib.rcParams["svg.hashsalt"] = "embcompare"
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SETUP_COLOURS = {
    "rand": "tab:red",
    "rand_kim": "tab:orange",
    "static": "tab:blue",
    "nonstatic": "tab:green",
    "multichannel": "tab:purple",
}


def _save(figure, out_dir: Path, stem: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out_dir / f"{stem}.png", dpi=120)
    figure.savefig(out_dir / f"{stem}.svg", dpi=120, metadata={"Date": None})
    plt.close(figure)
    return out_dir / f"{stem}.png"


def _panels(frame: pd.DataFrame, by_variant: bool = True):
    """(title, file-name suffix, rows) of one figure per dataset x embedding x model, and per
    variant where runs differ in more (fastText's unseen-word policy, say). The suffix names
    the embedding and variant only when needed, so a sweep of one keeps its file names."""
    keys = ["dataset", "embedding", "model"]
    keys += ["variant"] if by_variant and "variant" in frame else []
    several = frame["embedding"].nunique() > 1
    variants = frame.groupby(keys[:3])["variant"].nunique() if len(keys) > 3 else None
    for values, panel in frame.groupby(keys, sort=True, dropna=False):
        dataset, embedding, model, *rest = values
        # a variant label names what tells panels of one embedding apart; alone, it says nothing
        alone = variants is None or variants[(dataset, embedding, model)] < 2
        variant = "" if alone else rest[0]
        suffix = f"_{dataset}_{model}" + (f"_{embedding}" if several else "")
        suffix += f"_{_slug(variant)}" if variant else ""
        title = f"{dataset} ({model}, {embedding}{', ' + variant if variant else ''})"
        yield title, suffix, panel


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


BASELINE_LINESTYLES = {"rand": "-", "rand_kim": "--"}


def _by_setup(panel: pd.DataFrame):
    """(setup, rows) in the fixed setup order of SETUP_COLOURS, others after them by name."""
    present = set(panel["setup"])
    ordered = [s for s in SETUP_COLOURS if s in present] + sorted(present - set(SETUP_COLOURS))
    for setup in ordered:
        yield setup, panel[panel["setup"] == setup]


def _band(
    axis, frame: pd.DataFrame, metric: str, label: str, colour: str | None, linestyle: str = "-"
) -> None:
    frame = frame.sort_values("n_train")
    x, mean = frame["n_train"].to_numpy(), frame[metric].to_numpy()
    axis.plot(x, mean, marker="o", label=label, color=colour, linestyle=linestyle)
    half = frame.get(f"{metric}_ci95")
    used = frame.get(f"{metric}_repeats", frame.get("repeats"))
    if used is not None:  # fewer than 3 repeats: a t-interval that says little; no band
        half = half.where(used.to_numpy() >= 3) if half is not None else None
    if half is not None and np.isfinite(half.to_numpy()).any():
        half = half.to_numpy()
        axis.fill_between(x, mean - half, mean + half, alpha=0.2, color=colour)


def _log_n_axis(axis, ylabel: str, title: str) -> None:
    axis.set_xscale("log")
    axis.set_xlabel("training examples (log scale)")
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)


def accuracy_vs_n(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    paths = []
    for title, suffix, panel in _panels(summary):
        figure, axis = plt.subplots(figsize=(6, 4))
        for setup, frame in _by_setup(panel):
            _band(axis, frame, "test_accuracy", setup, SETUP_COLOURS.get(setup))
        if "test_majority_rate" in panel and panel["test_majority_rate"].notna().any():
            axis.axhline(panel["test_majority_rate"].mean(), color="black", linestyle=":",
                         label="majority class")  # fmt: skip
        _log_n_axis(
            axis,
            "test accuracy (mean, 95% CI over seeds)",
            f"test accuracy vs n: {title}",
        )
        paths.append(_save(figure, out_dir, f"accuracy_vs_n{suffix}"))
    return paths


def gap_vs_n(differences: pd.DataFrame, out_dir: Path) -> list[Path]:
    if differences.empty:  # one setup only: nothing to compare
        return []
    paths = []
    # a comparison met under two variants needs a panel each; else one panel holds them all
    shown = ["dataset", "embedding", "model", "comparison", "n"]
    by_variant = "variant" in differences and differences.duplicated(shown).any()
    for title, suffix, panel in _panels(differences, by_variant):
        figure, axis = plt.subplots(figsize=(6, 4))
        for comparison, frame in panel.groupby("comparison"):
            frame = frame.assign(
                gap=frame["mean_difference"], gap_ci95=(frame["ci_high"] - frame["ci_low"]) / 2
            )
            setup, _, baseline = comparison.partition(" - ")
            # colour: the setup; line: the baseline, so "static - rand" and "static - rand_kim"
            # stay apart
            style = BASELINE_LINESTYLES.get(baseline, ":")
            _band(axis, frame, "gap", comparison, SETUP_COLOURS.get(setup), style)
        axis.axhline(0.0, color="black", linewidth=0.8)
        _log_n_axis(
            axis,
            "accuracy difference (paired by seed, 95% CI)",
            f"each setup minus a random baseline: {title}",
        )
        paths.append(_save(figure, out_dir, f"gap_vs_n{suffix}"))
    return paths


def metrics_vs_n(
    summary: pd.DataFrame,
    out_dir: Path,
    metrics: dict[str, str],
    stem: str,
    references: dict[str, str] | None = None,
) -> list[Path]:
    """One panel per metric, one line per setup (mean and 95% CI over seeds) vs n.

    `references` maps a metric to a column measured on the same words or pairs (the
    pretrained vectors' score, a majority rate), drawn dashed in black: what the setups'
    lines must be read against. Setups where a metric was not measured are left out.
    """
    references = references or {}
    present = {
        m: label for m, label in metrics.items() if m in summary and summary[m].notna().any()
    }
    paths = []
    for title, suffix, panel in _panels(summary) if present else ():
        figure, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 4), squeeze=False)
        for axis, (metric, label) in zip(axes[0], present.items(), strict=True):
            for setup, frame in _by_setup(panel):
                if frame[metric].notna().any():
                    _band(axis, frame[frame[metric].notna()], metric, setup,
                          SETUP_COLOURS.get(setup))  # fmt: skip
            reference = references.get(metric)
            if reference in panel and panel[reference].notna().any():
                line = panel.groupby("n_train")[reference].mean().sort_index()
                axis.plot(line.index, line.to_numpy(), color="black", linestyle="--",
                          label=REFERENCE_LABELS.get(reference, reference))  # fmt: skip
            _log_n_axis(axis, label, title)
        paths.append(_save(figure, out_dir, f"{stem}{suffix}"))
    return paths


REFERENCE_LABELS = {
    "lexicon_probe_majority": "majority rate",
    "transfer_probe_majority": "majority rate",
    "simlex999_seen_spearman_source": "pretrained, same pairs",
    "ws353_seen_spearman_source": "pretrained, same pairs",
}


def sentence_pca(points: pd.DataFrame, out_dir: Path, stem: str, title: str) -> Path:
    """2-D PCA of sentence representations (the layer after the embedding), one panel a setup.

    `points` has one row per sentence: setup, x, y (its PCA coordinates) and label.
    """
    setups = [s for s in SETUP_COLOURS if s in set(points["setup"])] + sorted(
        set(points["setup"]) - set(SETUP_COLOURS)
    )
    figure, axes = plt.subplots(1, len(setups), figsize=(4 * len(setups), 4), squeeze=False)
    for axis, setup in zip(axes[0], setups, strict=True):
        frame = points[points["setup"] == setup]
        for label, chosen in frame.groupby("label", sort=True):
            axis.scatter(chosen["x"], chosen["y"], s=8, alpha=0.6, label=str(label))
        axis.set_title(setup, fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][0].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    return _save(figure, out_dir, stem)


def paper_bars(compared: pd.DataFrame, out_dir: Path, paper: str) -> list[Path]:
    """Per vectors: our accuracy per dataset and setup (bars, 95% CI) and the paper's (ticks)."""
    paths = []
    for embedding, frame in compared.groupby("embedding", sort=False):
        datasets = list(dict.fromkeys(frame["dataset"]))
        setups = [s for s in SETUP_COLOURS if s in set(frame["setup"])]
        width = 0.8 / len(setups)
        figure, axis = plt.subplots(figsize=(1.6 * len(datasets) + 2, 4))
        for offset, setup in enumerate(setups):
            rows = frame[frame["setup"] == setup].set_index("dataset").reindex(datasets)
            x = np.arange(len(datasets)) + (offset - (len(setups) - 1) / 2) * width
            colour = SETUP_COLOURS[setup]
            axis.bar(x, rows["ours"], width, yerr=rows["ours_ci95"], color=colour, alpha=0.7,
                     label=setup, capsize=2)  # fmt: skip
            axis.scatter(x, rows["kim"], marker="_", s=200, color="black", zorder=3)
        axis.scatter([], [], marker="_", s=200, color="black", label=paper)
        axis.set_xticks(np.arange(len(datasets)), datasets)
        low = np.nanmin(frame[["ours", "kim"]].to_numpy()) - 10
        axis.set_ylim(max(0, low), 108)  # headroom for the legend above the bars
        axis.set_yticks([t for t in axis.get_yticks() if t <= 100])
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"{embedding} (bars, 95% CI) vs {paper} (ticks)", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8, ncol=len(setups) + 1, loc="upper center")
        paths.append(_save(figure, out_dir, f"paper_{embedding}"))
    return paths


def tuned_gaps(gaps: pd.DataFrame, out_dir: Path, stem: str = "gaps_default_vs_tuned") -> Path:
    """Each comparison's gap (points, 95% CI) at each n: default settings dashed, every setup
    tuned on dev solid; the baseline's colour, since the comparisons share a few baselines."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    ns = list(dict.fromkeys(gaps["n"]))
    for axis, baseline in zip(axes, ("rand", "rand_kim"), strict=True):
        rows = gaps[gaps["comparison"].str.endswith(f"- {baseline}")]
        for offset, (comparison, frame) in enumerate(rows.groupby("comparison", sort=True)):
            setup = comparison.split(" - ")[0]
            x = np.array([ns.index(n) for n in frame["n"]]) + 0.08 * (offset - 0.5)
            for arm, style in (("default", "--"), ("tuned", "-")):
                mean = 100 * frame[f"{arm}_mean"].to_numpy(dtype=float)
                axis.plot(x, mean, style, marker="o", color=SETUP_COLOURS.get(setup),
                          label=f"{comparison}, {arm}")  # fmt: skip
            low = 100 * frame["tuned_low"].to_numpy(dtype=float)
            high = 100 * frame["tuned_high"].to_numpy(dtype=float)
            tuned = 100 * frame["tuned_mean"].to_numpy(dtype=float)
            axis.errorbar(x, tuned, yerr=[tuned - low, high - tuned], fmt="none",
                          color=SETUP_COLOURS.get(setup), capsize=3)  # fmt: skip
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xticks(range(len(ns)), [f"n={n}" for n in ns])
        axis.set_title(f"pretrained minus {baseline}")
        if not rows.empty:
            axis.legend(fontsize=7)
    axes[0].set_ylabel("test accuracy gap, points (tuned: 95% CI over seeds)")
    return _save(figure, out_dir, stem)


def training_curve(
    step_losses: list[tuple[int, float]],
    checks: list[tuple[int, float]],
    out_dir: Path,
    title: str,
) -> Path:
    """One run's training: the loss of every step (left axis) and dev accuracy at each check
    (right axis) against the optimizer step."""
    figure, loss_axis = plt.subplots(figsize=(6, 3.5))
    if step_losses:
        steps, losses = zip(*step_losses, strict=True)
        loss_axis.plot(steps, losses, color="tab:blue", linewidth=0.8, label="step loss")
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_ylabel("training loss", color="tab:blue")
    accuracy_axis = loss_axis.twinx()
    if checks:
        check_steps, accuracies = zip(*checks, strict=True)
        accuracy_axis.plot(check_steps, accuracies, color="tab:green", marker="o", markersize=3)
    accuracy_axis.set_ylabel("dev accuracy", color="tab:green")
    loss_axis.set_title(title, fontsize=10)
    loss_axis.grid(alpha=0.3)
    return _save(figure, out_dir, "training_curve")


FAMILY_MARKERS = {"static": "o", "nonstatic": "^", "rand": "s", "rand_kim": "D"}


def _family_colours(points: pd.DataFrame) -> dict[str, str]:
    """One hue per family: dark for the reference engine (or published vectors), light for its
    Keras twin; the task-trained rows in black."""
    palette = plt.get_cmap("tab20").colors
    hues = list(dict.fromkeys(points["family"]))
    colours = {}
    for _, row in points.iterrows():
        if row["task_trained"]:
            colours[row["label"]] = "black"
            continue
        shade = 1 if row["keras"] else 0
        colours[row["label"]] = palette[(2 * hues.index(row["family"]) + shade) % 20]
    return colours


def family_holdings(points: pd.DataFrame, out_dir: Path, stem: str = "families_meaning_polarity"):
    """Word meaning (SimLex-999 on seen pairs) against task polarity (lexicon probe above its
    majority rate), one marker per family and role, 95% CIs over seeds as bars."""
    figure, axis = plt.subplots(figsize=(8, 5.5))
    colours = _family_colours(points)
    for _, row in points.iterrows():
        label = row["label"]
        axis.errorbar(
            row["simlex999_seen_spearman"], row["probe_gain"],
            xerr=row["simlex999_seen_spearman_ci95"], yerr=row["probe_gain_ci95"],
            fmt=FAMILY_MARKERS.get(row["setup"], "o"), color=colours[label], capsize=2,
            markersize=7, label=f"{label}: {row['setup']}",
        )  # fmt: skip
    axis.axvline(0, color="grey", linewidth=0.8)
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xlabel("word meaning: SimLex-999 Spearman on pairs seen in training")
    axis.set_ylabel("task polarity: lexicon probe accuracy minus majority rate")
    axis.set_title("What each family's rows hold after the task (n = all)", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(figure, out_dir, stem)


def family_curves(points: pd.DataFrame, out_dir: Path, stem: str = "families_accuracy_vs_n"):
    """Test accuracy against n, one line per family: static left, nonstatic right, the
    task-trained rand lines in both."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    colours = _family_colours(points)
    task = points["setup"].isin(["rand", "rand_kim"])
    for axis, setup in zip(axes, ("static", "nonstatic"), strict=True):
        shown = points[(points["setup"] == setup) | task]
        for (label, line_setup), frame in shown.groupby(["label", "setup"], sort=False):
            colour = colours[label]
            style = {"rand": "--", "rand_kim": ":"}.get(line_setup, "-")
            frame = frame.sort_values("n_train")
            x, mean = frame["n_train"].to_numpy(), 100 * frame["test_accuracy"].to_numpy()
            half = 100 * frame["test_accuracy_ci95"].to_numpy()
            axis.plot(x, mean, style, marker=FAMILY_MARKERS.get(line_setup, "o"), color=colour,
                      markersize=4, label=f"{label}, {line_setup}" if line_setup != setup
                      else label)  # fmt: skip
            if np.isfinite(half).any():
                axis.fill_between(x, mean - half, mean + half, alpha=0.12, color=colour)
        _log_n_axis(axis, "test accuracy, % (mean, 95% CI over seeds)", f"{setup} and rand")
        axis.legend(fontsize=6)
    return _save(figure, out_dir, stem)
