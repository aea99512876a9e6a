"""What `embcompare pretrain` trains (its settings, checked) and where the vectors are cached.

A cache holds one set of settings: a rerun with the same ones reuses it, other ones replace it
only with overwrite=true.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from embcompare.errors import EmbcompareError


@dataclass(frozen=True)
class Method:
    """An engine and what it trains: `sg` fixes skip-gram (1) or CBOW (0), None lets `sg=`
    choose; `subwords` trains fastText (words and their character n-grams); `glove` trains
    GloVe on co-occurrence counts, which reads none of word2vec's sg, negative, sample and
    min_learning_rate."""

    engine: str
    sg: int | None = None
    subwords: bool = False
    glove: bool = False


METHODS = {
    "keras_sgns": Method("keras", sg=1),
    "keras_cbow": Method("keras", sg=0),
    "keras_fasttext": Method("keras", sg=1, subwords=True),
    "gensim": Method("gensim"),
    "gensim_fasttext": Method("gensim", subwords=True),
    "keras_glove": Method("keras", glove=True),
    # mittens' AdaGrad starts its sums at 0.1 and takes the whole matrix per step: no batches
    "mittens_glove": Method("mittens", glove=True),
}


@dataclass(frozen=True)
class Settings:
    """Everything that changes the trained vectors.

    gensim's worker count is among them: one thread gives the same vectors in every process,
    several interleave their updates differently every run.
    """

    method: str
    corpus: str
    sg: int | None  # None, as the three below, for GloVe
    dim: int
    window: int
    negative: int | None
    min_count: int
    epochs: int
    sample: float | None
    learning_rate: float
    min_learning_rate: float | None
    batch_size: int | None
    seed: int
    max_tokens: int | None
    workers: int | None = None
    # fastText only: n-gram lengths and hash buckets (None for word2vec, as in its older caches)
    min_n: int | None = None
    max_n: int | None = None
    bucket: int | None = None
    # GloVe only (None otherwise): f(x)'s x_max and alpha, the words kept, and keras_glove's
    # AdaGrad starting sum
    x_max: float | None = None
    alpha: float | None = None
    max_words: int | None = None
    initial_accumulator: float | None = None

    @property
    def engine(self) -> str:
        return METHODS[self.method].engine

    @property
    def subwords(self) -> bool:
        return METHODS[self.method].subwords

    @property
    def arch(self) -> str:
        if METHODS[self.method].glove:
            return "glove"
        return "sgns" if self.sg else "cbow"

    @property
    def model_name(self) -> str:
        """What was trained, as the cache directory names it: 'sgns', 'cbow', 'fasttext-sgns',
        'glove'."""
        return f"fasttext-{self.arch}" if self.subwords else self.arch

    def gensim_arguments(self) -> dict:
        """gensim's Word2Vec (and FastText) arguments for these settings; FastText also takes
        the n-gram ones (`subword_arguments`). A setting the method leaves unused (None, as
        workers for a Keras method) keeps gensim's default."""
        arguments = dict(
            vector_size=self.dim,
            window=self.window,
            negative=self.negative,
            min_count=self.min_count,
            sample=self.sample,
            sg=self.sg,
            alpha=self.learning_rate,
            min_alpha=self.min_learning_rate,
            seed=self.seed,
            workers=self.workers,
        )
        return {name: value for name, value in arguments.items() if value is not None}

    def subword_arguments(self) -> dict:
        return dict(min_n=self.min_n, max_n=self.max_n, bucket=self.bucket)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def settings_from(cfg: DictConfig) -> Settings:
    method = cfg.method
    if method not in METHODS:
        raise EmbcompareError(f"method={method!r} is unknown; choose one of {sorted(METHODS)}")
    engine = METHODS[method].engine
    # settings a method does not read stay None: changing them must not invalidate its cache
    own = _glove_settings(cfg, engine) if METHODS[method].glove else _word2vec_settings(cfg)
    subwords = _subword_settings(cfg) if METHODS[method].subwords else {}
    return Settings(
        method=method,
        corpus=cfg.corpus.name,
        dim=_positive_int(cfg, "dim"),
        window=_positive_int(cfg, "window"),
        min_count=_positive_int(cfg, "min_count"),
        epochs=_positive_int(cfg, "epochs"),
        learning_rate=_number(cfg, "learning_rate"),
        # gensim has no batches: leaving the size out keeps it from invalidating gensim's cache
        batch_size=_positive_int(cfg, "batch_size") if engine == "keras" else None,
        seed=int(_number(cfg, "seed")),
        max_tokens=None if cfg.max_tokens is None else _positive_int(cfg, "max_tokens"),
        workers=_positive_int(cfg, "workers") if engine == "gensim" else None,
        **own,
        **subwords,
    )


def _word2vec_settings(cfg: DictConfig) -> dict:
    fixed_sg = METHODS[cfg.method].sg
    if cfg.sg not in (0, 1) or (fixed_sg is not None and cfg.sg != fixed_sg):
        allowed = "0 or 1" if fixed_sg is None else str(fixed_sg)
        raise EmbcompareError(f"sg={cfg.sg} does not fit method={cfg.method}: use sg={allowed}")
    return {
        "sg": int(cfg.sg),
        "negative": _positive_int(cfg, "negative"),
        "sample": _number(cfg, "sample"),
        "min_learning_rate": _number(cfg, "min_learning_rate"),
    }


def _glove_settings(cfg: DictConfig, engine: str) -> dict:
    word2vec_only = dict.fromkeys(["sg", "negative", "sample", "min_learning_rate"])
    return {
        **word2vec_only,
        "x_max": _positive_number(cfg, "x_max"),
        "alpha": _number(cfg, "alpha"),
        "max_words": None if cfg.max_words is None else _positive_int(cfg, "max_words"),
        # mittens fixes its own (0.1)
        "initial_accumulator": (
            _positive_number(cfg, "initial_accumulator") if engine == "keras" else None
        ),
    }


def _subword_settings(cfg: DictConfig) -> dict[str, int]:
    min_n, max_n = _positive_int(cfg, "min_n"), _positive_int(cfg, "max_n")
    if max_n < min_n:
        raise EmbcompareError(f"max_n={max_n} must be at least min_n={min_n}")
    return {"min_n": min_n, "max_n": max_n, "bucket": _positive_int(cfg, "bucket")}


def _positive_int(cfg: DictConfig, key: str) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EmbcompareError(f"{key}={value!r} must be a positive integer")
    return value


def _number(cfg: DictConfig, key: str) -> float:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise EmbcompareError(f"{key}={value!r} must be a number >= 0")
    return float(value)


def _positive_number(cfg: DictConfig, key: str) -> float:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise EmbcompareError(f"{key}={value!r} must be a number > 0")
    return float(value)


def output_dir(cfg: DictConfig, settings: Settings) -> Path:
    """A name predictable from the config, so that conf/embedding/*.yaml can point at it."""
    name = cfg.output_name or (
        f"{settings.engine}-{settings.model_name}-{settings.corpus}-{settings.dim}d"
    )
    return Path(cfg.paths.cache_dir).expanduser().absolute() / "pretrained" / str(name)


def cached_report(directory: Path, settings: Settings, overwrite: bool) -> dict | None:
    """The earlier report when `directory` holds vectors of these very settings, else None.

    Vectors of other settings are only replaced on request: runs may already have used them.
    """
    report_path = directory / "pretrain.json"
    if not directory.exists():
        return None
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        # a setting missing from an older report counts as None, so adding one keeps old caches
        changed = _differences(report.get("settings", {}), settings.as_dict())
        if not changed:
            return report
        if not overwrite:
            raise EmbcompareError(
                f"{directory}: holds vectors trained with other settings ({changed}); "
                "add overwrite=true to replace them, or output_name=<new name> to keep both"
            )
    # other settings (overwrite=true), or a run that died before writing pretrain.json
    shutil.rmtree(directory)
    return None


def _differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)} there, {new.get(k)} now" for k in keys)
