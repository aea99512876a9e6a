"""Our numbers beside Kim (2014): the comparison table, the ordering check, Table 3's layout."""

import numpy as np
import pandas as pd
import pytest

from embcompare.errors import EmbcompareError
from embcompare.reporting import paper


def summary_of(accuracies: dict[tuple[str, str], float], repeats: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": dataset,
                "embedding": "glove-6b-50d",
                "setup": setup,
                "repeats": repeats,
                "test_accuracy": accuracy,
                "test_accuracy_ci95": 0.01,
            }
            for (dataset, setup), accuracy in accuracies.items()
        ]
    )


def test_side_by_side_sets_ours_against_table2_in_points():
    compared = paper.side_by_side(
        summary_of({("mr", "rand_kim"): 0.70, ("trec", "static"): 0.9, ("imdb", "rand_kim"): 0.8})
    )
    assert compared["dataset"].tolist() == ["MR", "TREC"]  # imdb is not in Kim's table
    assert compared["setup"].tolist() == ["rand", "static"]  # his CNN-rand is our rand_kim
    keras_rand = paper.side_by_side(summary_of({("mr", "rand"): 0.7}))
    assert keras_rand.empty  # Keras's default init has no row in his table
    mr = compared.iloc[0]
    assert (mr["kim"], mr["ours"], mr["ours_ci95"]) == (76.1, pytest.approx(70.0), 1.0)
    assert mr["difference"] == pytest.approx(-6.1)
    assert compared.iloc[1]["difference"] == pytest.approx(90.0 - 92.8)


def test_table2_layout_fills_missing_cells_with_kims_number_only():
    compared = paper.side_by_side(summary_of({("subj", "nonstatic"): 0.9}))
    table = paper.table2_layout(compared, "glove-6b-50d")
    assert table["setup"].tolist() == paper.SETUPS
    assert list(table.columns) == ["setup", "MR", "SST-2", "Subj", "TREC", "CR", "MPQA"]
    assert table.loc[2, "Subj"] == "90.0 ± 1.0 (93.4; -3.4)"
    assert table.loc[0, "MR"] == "— (76.1)"
    single = paper.side_by_side(summary_of({("cr", "rand_kim"): 0.8}, repeats=1))
    cell = paper.table2_layout(single, "glove-6b-50d").loc[0, "CR"]
    assert cell == "80.0 (1 run, no CI) (79.8; +0.2)"


def test_ordering_findings_hold_fail_or_are_inconclusive_from_paired_repeats():
    def runs_of(dataset, accuracies):
        return [
            {"dataset": dataset, "embedding": "glove-6b-50d", "model": "cnn", "setup": setup,
             "n": "all", "n_train": 100, "seed": seed, "run_dir": f"{dataset}{setup}{seed}",
             "test_accuracy": base + 0.01 * seed + 0.001 * index * (-1) ** seed}
            for index, (setup, base) in enumerate(accuracies.items())
            for seed in range(1, 6)
        ]  # fmt: skip

    runs = pd.DataFrame(
        runs_of("mr", {"rand_kim": 0.70, "static": 0.75, "nonstatic": 0.76})
        + runs_of("subj", {"rand_kim": 0.90, "static": 0.85, "nonstatic": 0.86})
        + runs_of("cr", {"rand_kim": 0.78, "static": 0.781, "nonstatic": 0.781})
        + runs_of("mpqa", {"rand_kim": 0.8})
    )
    findings = paper.ordering_findings(runs)  # in Table 2's order: MR, Subj, CR, MPQA
    assert findings[0].startswith("glove-6b-50d, MR: static - rand_kim 5.0 [")
    assert findings[0].endswith("-> holds.")
    assert findings[1].endswith("-> does not hold.")
    assert findings[2].endswith("-> inconclusive, need more seeds.")
    assert "not checked" in findings[3]


def write_neighbours(run_dir, channels: dict[str, list[str]]):
    run_dir.mkdir()
    rows = [
        {
            "channel": channel,
            "stage": stage,
            "word": "good",
            "rank": rank,
            "neighbour": word,
            "cosine": 0.9 - rank / 100,
        }
        for channel, words in channels.items()
        for stage in ("before", "after")
        for rank, word in enumerate(words if stage == "after" else ["x"] * 6, start=1)
    ]
    pd.DataFrame(rows).to_csv(run_dir / "neighbours.csv", index=False)


def test_neighbour_table_reads_the_fine_tuned_channel_after_training(tmp_path):
    write_neighbours(tmp_path / "a", {"channel_0": list("abcdef")})
    write_neighbours(tmp_path / "b", {"channel_0": ["no"] * 6, "channel_1": list("uvwxyz")})
    runs = pd.DataFrame(
        {
            "dataset": ["sst2_phrases"] * 2,
            "embedding": ["glove-6b-50d"] * 2,
            "setup": ["static", "nonstatic"],
            "seed": [0, 0],
            "run_dir": ["a", "b"],
        }
    )
    table = paper.neighbour_table(runs, tmp_path, k=5)
    good = table[table["word"] == "good"].set_index("setup")["neighbours"]
    assert good["static"] == "a, b, c, d, e"
    assert good["nonstatic"] == "u, v, w, x, y"
    assert table[table["word"] == "bad"]["neighbours"].eq("(not in vocabulary)").all()
    (tmp_path / "a" / "neighbours.csv").unlink()
    with pytest.raises(EmbcompareError, match="neighbours.csv: missing"):
        paper.neighbour_table(runs, tmp_path)


def test_wall_time_sums_minutes_per_dataset():
    runs = pd.DataFrame(
        {"embedding": ["g"] * 3, "dataset": ["mr", "mr", "trec"], "total_seconds": [60, 120, 30]}
    )
    table = paper.wall_time(runs).set_index("dataset")
    assert table.loc["MR", "minutes"] == 3.0
    assert table.loc["MR", "runs"] == 2
    assert np.isclose(table.loc["TREC", "minutes_per_run"], 0.5)


def test_repeats_line_gives_each_datasets_repeats_in_table_order():
    compared = pd.concat(
        [
            paper.side_by_side(summary_of({("trec", "rand_kim"): 0.9, ("mr", "rand_kim"): 0.7})),
            paper.side_by_side(summary_of({("trec", "static"): 0.9}, repeats=3)),
        ]
    )
    assert paper.repeats_line(compared, "glove-6b-50d") == "Repeats per cell: MR 10, TREC 3-10."


def test_findings_name_the_vectors_when_a_sweep_used_several():
    from embcompare.reporting.report import Report, _findings

    def difference(embedding, mean):
        return {
            "dataset": "mr",
            "embedding": embedding,
            "model": "cnn",
            "n": "all",
            "n_train": 100,
            "variant": "",
            "comparison": "static - rand",
            "repeats": 2,
            "mean_difference": mean,
            "ci_low": mean - 0.01,
            "ci_high": mean + 0.01,
            "t_test_p": 0.5,
        }

    summary = pd.DataFrame({"embedding": ["glove-6b-50d", "word2vec-sg-imdb-300d"]})
    differences = pd.DataFrame(
        [difference("glove-6b-50d", 0.05), difference("word2vec-sg-imdb-300d", 0.02)]
    )
    report = Report("t")
    _findings(report, summary, differences)
    text = "".join(report.markdown)
    assert "mr (cnn, glove-6b-50d): static - rand in test accuracy: +5.0 [+4.0, +6.0]" in text
    w2v = "mr (cnn, word2vec-sg-imdb-300d): static - rand in test accuracy: +2.0 [+1.0, +3.0]"
    assert w2v in text


def test_report_removes_only_figures_it_wrote_and_no_longer_shows(tmp_path):
    from embcompare.reporting.report import FIGURES_MANIFEST, Report

    figures = tmp_path / "figures"
    figures.mkdir()
    for name in ("shown.png", "shown.svg", "stale.png", "stale.svg", "mine.png", "mine.svg"):
        (figures / name).write_bytes(b"\x89PNG")
    earlier = Report("t")  # an earlier report showed 'stale'; 'mine' is the user's own
    earlier.figure(figures / "stale.png", "an old figure", tmp_path)
    earlier.write(tmp_path)
    report = Report("t")
    report.figure(figures / "shown.png", "a figure", tmp_path)
    report.write(tmp_path)
    kept = sorted(p.name for p in figures.iterdir())
    assert kept == [FIGURES_MANIFEST, "mine.png", "mine.svg", "shown.png", "shown.svg"]
    assert "![a figure](figures/shown.png)" in (tmp_path / "report.md").read_text()
