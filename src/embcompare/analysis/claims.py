"""The four claims of the usual answer, each a pure function from tables to a verdict.

(a) a task-trained embedding holds task polarity, not word meaning;
(b) with few samples pretrained init helps, also for words training never showed;
(c) an Embedding layer is a bias-free Dense layer on one-hot inputs;
(d) a Keras Embedding can itself be trained as word2vec.

Every claim is decided by `verdicts.Check`s on interval estimates, so each can come out
"holds", "does not hold" or "inconclusive". Rows are chosen by explicit keys; a table holding
more than one dataset, vectors, model or config variant is refused (split it first with
`contexts`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from embcompare.analysis.findings import describe_curve
from embcompare.analysis.verdicts import (
    Check,
    Estimate,
    Verdict,
    exact,
    interval,
    paired_estimate,
)
from embcompare.errors import EmbcompareError

CONTEXT = ["dataset", "embedding", "model", "variant"]
RAND_SETUPS = ("rand", "rand_kim")
BENCHMARKS = {"simlex999": "SimLex-999", "ws353": "WS-353"}
NO_MEANING_RHO = 0.1  # below this Spearman, a space ranks word pairs about as well as chance
MIN_PAIRS = 30
CLAIMS = {
    "a": "(a) a task-trained embedding holds task polarity, not word meaning",
    "b": "(b) with few labelled examples pretrained init helps, also for words training never saw",
    "c": "(c) an Embedding layer is a bias-free Dense layer on one-hot inputs",
    "d": "(d) a Keras Embedding can itself be trained as word2vec",
}


def contexts(table: pd.DataFrame):
    """(context label, rows) per dataset x vectors x model x config variant."""
    present = [c for c in CONTEXT if c in table]
    for key, rows in table.groupby(present, dropna=False, sort=True):
        values = dict(zip(present, key, strict=True))
        label = f"{values['dataset']} ({values['model']}, {values['embedding']})"
        if values.get("variant"):
            label += f" [{values['variant']}]"
        yield label, rows


def _one_context(table: pd.DataFrame) -> None:
    present = [c for c in CONTEXT if c in table]
    mixed = [c for c in present if table[c].nunique(dropna=False) > 1]
    if mixed:
        raise EmbcompareError(
            f"a claim reads one context at a time; this table mixes {', '.join(mixed)}"
        )


def _largest_n(runs: pd.DataFrame) -> str:
    return str(runs.loc[runs["n_train"].idxmax(), "n"])


def _smallest_n(runs: pd.DataFrame) -> str:
    return str(runs.loc[runs["n_train"].idxmin(), "n"])


def _rows(runs: pd.DataFrame, setup: str, n: str) -> pd.DataFrame:
    return runs[(runs["setup"] == setup) & (runs["n"].astype(str) == n)].sort_values("seed")


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)


def task_not_meaning(runs: pd.DataFrame) -> Verdict:
    """(a) at the largest n, for each randomly initialised setup: the lexicon probe beats the
    majority rate (polarity), and similarity on pairs both seen in training stays below
    rho = 0.1 (no word meaning)."""
    _one_context(runs)
    verdict = Verdict(CLAIMS["a"])
    n = _largest_n(runs)
    for setup in (s for s in RAND_SETUPS if s in set(runs["setup"])):
        rows = _rows(runs, setup, n)
        accuracy = _column(rows, "lexicon_probe_accuracy")
        majority = _column(rows, "lexicon_probe_majority")
        verdict.checks.append(
            Check(
                f"{setup} at n={n}: lexicon-probe accuracy minus its majority rate",
                interval(accuracy - majority),
            )
        )
        for bench, name in BENCHMARKS.items():
            test, note = _no_meaning_test(rows, setup, n, bench, name)
            if test is not None:
                verdict.checks.append(test)
            if note not in verdict.notes:
                verdict.notes.append(note)
    if not verdict.checks:
        verdict.notes.append("no randomly initialised setup in these runs")
    return verdict


def _no_meaning_test(rows, setup, n, bench, name) -> tuple[Check | None, str]:
    pairs = _column(rows, f"{bench}_seen_pairs")
    if not np.isfinite(pairs).any():
        return None, f"{setup}: no {name} scores on seen pairs in these runs"
    if np.nanmin(pairs) < MIN_PAIRS:
        return None, (
            f"{setup} at n={n}: {name} has {int(np.nanmin(pairs))} pairs with both words seen "
            f"in training: too few pairs (needs {MIN_PAIRS}), not scored"
        )
    trained = interval(_column(rows, f"{bench}_seen_spearman"))
    source = interval(_column(rows, f"{bench}_seen_spearman_source"))
    # the seeds share one set of pairs, so the per-run bootstrap over pairs bounds it too
    lows = _column(rows, f"{bench}_seen_spearman_ci_low")
    highs = _column(rows, f"{bench}_seen_spearman_ci_high")
    if np.isfinite(lows).any() and np.isfinite(highs).any() and trained.has_interval:
        low, high = np.nanmean(lows), np.nanmean(highs)
        trained = Estimate(
            trained.mean,
            min(trained.low, low),
            max(trained.high, high),
            trained.repeats,
            "seeds (widened to the bootstrap CI over pairs)",
        )
    test = Check(
        f"{setup} at n={n}: {name} Spearman of the trained rows on {int(np.nanmin(pairs))} "
        "pairs seen in training",
        trained,
        threshold=NO_MEANING_RHO,
        below=True,
    )
    note = f"the pretrained vectors score {source.text()} on the same {name} pairs"
    return test, note


def pretrained_helps_when_small(runs: pd.DataFrame, differences: pd.DataFrame) -> Verdict:
    """(b) each pretrained setup beats each random baseline at the smallest n, by more than at
    the largest n; and on lexicon words training never saw, its probe beats rand's."""
    _one_context(runs)
    verdict = Verdict(CLAIMS["b"])
    if differences.empty:
        verdict.notes.append("no paired comparisons with a random baseline")
        return verdict
    small, large = _smallest_n(runs), _largest_n(runs)
    if small == large:
        verdict.notes.append(f"one training-set size only (n={small}): 'few' cannot be told apart")
        return verdict
    for comparison, curve in differences.groupby("comparison", sort=True):
        if _setups_of(comparison)[0] in RAND_SETUPS:
            continue  # rand - rand_kim compares two inits, not pretrained against random
        at_small = curve[curve["n"].astype(str) == small]
        if at_small.empty:
            continue
        estimate = paired_estimate(at_small.iloc[0])
        verdict.checks.append(
            Check(f"{comparison}, test accuracy at n={small}", estimate, scale=100, digits=1)
        )
        if small != large:
            verdict.checks.append(_shrinks_test(runs, comparison, small, large))
        verdict.notes.append(f"{comparison}: {describe_curve(curve)}")
    for n in dict.fromkeys([small, large]):
        verdict.checks.extend(_unseen_word_tests(runs, n))
    return verdict


def _setups_of(comparison: str) -> tuple[str, str]:
    setup, baseline = (part.strip() for part in comparison.split(" - "))
    return setup, baseline


def _paired_gap(runs: pd.DataFrame, setup: str, baseline: str, n: str, metric: str) -> pd.Series:
    """setup minus baseline per seed at one n (seeds where both finished)."""
    other = _rows(runs, setup, n).set_index("seed")[metric]
    base = _rows(runs, baseline, n).set_index("seed")[metric]
    return (other - base).dropna()


def _shrinks_test(runs, comparison: str, small: str, large: str) -> Check:
    setup, baseline = _setups_of(comparison)
    at_small = _paired_gap(runs, setup, baseline, small, "test_accuracy")
    at_large = _paired_gap(runs, setup, baseline, large, "test_accuracy")
    shrink = (at_small - at_large).dropna()
    return Check(
        f"{comparison}: gap at n={small} minus gap at n={large} (same seeds)",
        interval(shrink.to_numpy()),
        scale=100,
        digits=1,
    )


def _unseen_word_tests(runs: pd.DataFrame, n: str) -> list[Check]:
    """Alps/Himalaya at n, pretrained setup against random baseline, paired by seed: at word
    level, the lexicon probe fit on seen words and scored on words training never saw; at
    sentence level, how much less accuracy it loses when seen polar words of the test set are
    swapped for unseen pretrained neighbours."""
    runs = runs.assign(
        perturbed_drop=_column(runs, "perturbed_changed_original_accuracy")
        - _column(runs, "perturbed_changed_accuracy")
    )
    measures = {
        "transfer_probe_accuracy": "probe accuracy on lexicon words training never saw",
        "perturbed_drop": "accuracy lost on test sentences whose seen polar words were swapped "
        "for unseen neighbours, baseline's loss minus this setup's",
    }
    checks = []
    for metric, what in measures.items():
        if not np.isfinite(_column(runs, metric)).any():
            continue
        for baseline in (s for s in RAND_SETUPS if s in set(runs["setup"])):
            for setup in sorted(set(runs["setup"]) - set(RAND_SETUPS)):
                gap = _paired_gap(runs, setup, baseline, n, metric)
                if metric == "perturbed_drop":
                    gap = -gap  # a smaller loss than the baseline's is the claimed side
                checks.append(
                    Check(f"{setup} - {baseline} at n={n}: {what}", interval(gap.to_numpy()))
                )
    return checks


def one_hot_gaps(vocab: int = 50, dim: int = 6, batch: int = 4, length: int = 7) -> dict:
    """The same matrix as an Embedding and as a bias-free Dense layer on one-hot ids: largest
    output and gradient differences, and how many rows get a gradient."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(vocab, dim)).astype(np.float32)
    token_ids = rng.integers(0, vocab, size=(batch, length)).astype(np.int32)
    upstream = tf.constant(rng.normal(size=(batch, length, dim)).astype(np.float32))
    embedding, dense = keras.layers.Embedding(vocab, dim), keras.layers.Dense(dim, use_bias=False)
    embedding.build((batch, length))
    dense.build((batch, length, vocab))
    embedding.embeddings.assign(matrix)
    dense.kernel.assign(matrix)
    with tf.GradientTape(persistent=True) as tape:
        looked_up, multiplied = embedding(token_ids), dense(tf.one_hot(token_ids, vocab))
        losses = tf.reduce_sum(looked_up * upstream), tf.reduce_sum(multiplied * upstream)
    lookup_grad = tf.convert_to_tensor(tape.gradient(losses[0], embedding.embeddings.value))
    dense_grad = tape.gradient(losses[1], dense.kernel.value)
    return {
        "vocab": vocab,
        "dim": dim,
        "batch": f"{batch}x{length}",
        "output_gap": float(tf.reduce_max(tf.abs(looked_up - multiplied))),
        "gradient_gap": float(tf.reduce_max(tf.abs(lookup_grad - dense_grad))),
        "rows_with_gradient": int(np.sum(np.abs(dense_grad.numpy()).sum(axis=1) > 0)),
        "distinct_ids": len(np.unique(token_ids)),
    }


def one_hot_equivalence(gaps: dict, tolerance: float = 1e-6) -> Verdict:
    """(c) from `one_hot_gaps`: both differences at float32 round-off or below."""
    verdict = Verdict(CLAIMS["c"])
    for key, what in (("output_gap", "outputs"), ("gradient_gap", "gradients")):
        verdict.checks.append(
            Check(
                f"largest |Embedding - Dense(one-hot)| difference in {what}",
                exact(gaps[key]),
                threshold=tolerance,
                below=True,
                digits=8,
            )
        )
    verdict.notes.append(
        f"{gaps['vocab']}x{gaps['dim']} matrix, batch {gaps['batch']}: {gaps['rows_with_gradient']}"
        f" of {gaps['vocab']} rows get a gradient (the {gaps['distinct_ids']} distinct ids)"
    )
    return verdict


def keras_word2vec(pretraining: pd.DataFrame, share: float = 0.9) -> Verdict:
    """(d) Keras SGNS reaches `share` of gensim skip-gram's Spearman on WS-353 and SimLex-999,
    trained on the same corpus at the same dimension. A ratio needs a bootstrap CI over
    pairs (`<bench>_ratio_ci_low/high` on the Keras row) to decide; one run each without it is
    inconclusive."""
    verdict = Verdict(CLAIMS["d"])
    if "method" not in pretraining:
        verdict.notes.append(
            "no pretraining outputs: run `embcompare pretrain method=keras_sgns` and "
            "`method=gensim sg=1` first"
        )
        return verdict
    keras_rows = pretraining[pretraining["method"] == "keras_sgns"]
    gensim_rows = pretraining[(pretraining["method"] == "gensim") & (pretraining["arch"] == "sgns")]
    for _, ours in keras_rows.iterrows():
        same = gensim_rows[
            (gensim_rows["corpus"] == ours["corpus"]) & (gensim_rows["dim"] == ours["dim"])
        ]
        if len(same) != 1:
            verdict.notes.append(
                f"{ours['name']}: {len(same)} gensim skip-gram runs on {ours['corpus']} at "
                f"{ours['dim']}d; need exactly one to compare"
            )
            continue
        theirs = same.iloc[0]
        for bench in ("ws353", "simlex999"):
            ratio = ours[f"{bench}_spearman"] / theirs[f"{bench}_spearman"]
            low, high = ours.get(f"{bench}_ratio_ci_low"), ours.get(f"{bench}_ratio_ci_high")
            bounded = low is not None and pd.notna(low)
            estimate = (
                Estimate(ratio, low, high, 1000, "bootstrap resamples of pairs")
                if bounded
                else Estimate(ratio, np.nan, np.nan, 1, "runs")
            )
            verdict.checks.append(
                Check(
                    f"{bench}: Keras SGNS / gensim skip-gram Spearman "
                    f"({ours[f'{bench}_spearman']:.3f} / {theirs[f'{bench}_spearman']:.3f})",
                    estimate,
                    threshold=share,
                )
            )
        verdict.notes.append(
            f"training time: Keras {ours['train_seconds']:.0f} s vs gensim "
            f"{theirs['train_seconds']:.0f} s "
            f"({ours['train_seconds'] / theirs['train_seconds']:.1f}x) on "
            f"{int(ours['tokens']):,} tokens of {ours['corpus']}"
        )
    if keras_rows.empty or gensim_rows.empty:
        verdict.notes.append(
            "run `embcompare pretrain method=keras_sgns` and `method=gensim sg=1` first"
        )
    return verdict
