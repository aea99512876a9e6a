"""The word-similarity and analogy benchmark files (conf/similarity): their readers, and
fetching them for a config.

Word pairs
    word1<TAB>word2<TAB>score per line, blank lines and '#' comments skipped; a malformed line
    is an error naming the file and line.
Your own word pairs
    `similarity.extra=[/path/a.txt,/path/b.txt]`: files in the word-pair format, read where they
    are (no sha256 to pin; their content enters the run key instead), named by their file name
    less extension, and scored wherever the configured benchmarks are.
Analogies
    questions-words.txt: ': section' header lines, then 'a b c d' questions (a : b :: c : d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from embcompare.data.datasets import numbered_lines
from embcompare.errors import EmbcompareError


@dataclass(frozen=True)
class WordPairs:
    name: str
    path: Path
    first: tuple[str, ...]
    second: tuple[str, ...]
    gold: np.ndarray

    def __len__(self) -> int:
        return len(self.gold)

    @cached_property
    def distinct_words(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.first, *self.second)))

    @cached_property
    def word_positions(self) -> np.ndarray:
        """Pairs x 2: where each word of each pair is in distinct_words (looked up once)."""
        return _positions(self.distinct_words, zip(self.first, self.second, strict=True), 2)


@dataclass(frozen=True)
class Analogies:
    path: Path
    sections: tuple[str, ...]  # the section of each question
    questions: tuple[tuple[str, str, str, str], ...]  # a : b :: c : d

    @cached_property
    def distinct_words(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w for question in self.questions for w in question))

    @cached_property
    def word_positions(self) -> np.ndarray:
        """Questions x 4: where each word of each question is in distinct_words. A run then
        looks up the ~900 distinct words, not the ~80k words of the questions, in each space."""
        return _positions(self.distinct_words, self.questions, 4)


def _positions(distinct: tuple[str, ...], rows, width: int) -> np.ndarray:
    position = {word: at for at, word in enumerate(distinct)}
    flat = np.fromiter((position[word] for row in rows for word in row), dtype=np.int64)
    return flat.reshape(-1, width)


def read_word_pairs(path: Path, name: str) -> WordPairs:
    """word1<TAB>word2<TAB>score per line; blank lines and '#' comments are skipped."""
    first, second, gold = [], [], []
    for number, line in numbered_lines(path, "utf-8", encoding_key=None):
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = _pair_fields(line, path, number)
        first.append(a)
        second.append(b)
        gold.append(score)
    if not gold:
        raise EmbcompareError(f"{path}: no word pairs in the file")
    return WordPairs(name, path, tuple(first), tuple(second), np.array(gold))


def _pair_fields(line: str, path: Path, number: int) -> tuple[str, str, float]:
    fields = [field.strip() for field in line.split("\t")]
    if len(fields) != 3 or not fields[0] or not fields[1]:
        raise EmbcompareError(
            f"{path}: line {number}: expected word1<TAB>word2<TAB>score, found {line!r}"
        )
    try:
        score = float(fields[2])
    except ValueError:
        raise EmbcompareError(
            f"{path}: line {number}: score {fields[2]!r} is not a number"
        ) from None
    if not math.isfinite(score):
        raise EmbcompareError(f"{path}: line {number}: score {fields[2]!r} is not finite")
    return fields[0], fields[1], score


def read_analogies(path: Path) -> Analogies:
    """': section' header lines, then 'a b c d' questions separated by spaces."""
    sections, questions, section = [], [], None
    for number, line in numbered_lines(path, "utf-8", encoding_key=None):
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        words = line.split()
        if not words:
            continue
        if section is None:
            raise EmbcompareError(f"{path}: line {number}: question before any ': section' line")
        if len(words) != 4:
            raise EmbcompareError(
                f"{path}: line {number}: expected 4 words 'a b c d', found {len(words)}"
            )
        sections.append(section)
        questions.append(tuple(words))
    return Analogies(path, tuple(sections), tuple(questions))


def benchmark_files(cfg: DictConfig) -> tuple[dict[str, Path], Path]:
    """The similarity files (the configured ones, fetched when missing, then the extra ones)
    and the analogy file of cfg.similarity."""
    from embcompare.data.fetch import data_dir_from, ensure_file

    data_dir, mirror = data_dir_from(cfg.paths.data_dir), cfg.paths.mirror
    pairs = {
        name: ensure_file(entry, data_dir, mirror)
        for name, entry in cfg.similarity.benchmarks.items()
    }
    pairs.update(extra_benchmark_files(cfg))
    return pairs, ensure_file(cfg.similarity.analogies, data_dir, mirror)


def extra_benchmark_files(cfg: DictConfig) -> dict[str, Path]:
    """similarity.extra as {name: path}, each an existing file under a name of its own."""
    extra = OmegaConf.select(cfg, "similarity.extra", default=None)
    if extra is None:
        return {}
    if not OmegaConf.is_list(extra) or not all(isinstance(p, str) and p for p in extra):
        given = OmegaConf.to_container(extra) if OmegaConf.is_config(extra) else extra
        raise EmbcompareError(
            f"similarity.extra={given!r} must be a list of word-pair files: "
            "similarity.extra=[/path/a.txt,/path/b.txt]"
        )
    files: dict[str, Path] = {}
    for path in (Path(p).expanduser() for p in extra):
        name = path.stem
        if name in cfg.similarity.benchmarks or name in files:
            raise EmbcompareError(
                f"similarity.extra: {path} would be scored as {name!r}, a name already taken by "
                "another benchmark; rename the file"
            )
        if not path.is_file():
            raise EmbcompareError(f"similarity.extra: {path}: no such file")
        files[name] = path
    return files


def check_extra_benchmarks(cfg: DictConfig) -> None:
    """Read every extra word-pair file once, so a mistake in one stops a run before training."""
    for name, path in extra_benchmark_files(cfg).items():
        read_word_pairs(path, name)


def headline_benchmarks(cfg: DictConfig) -> list[str]:
    """Benchmarks whose scores go into metrics.json: semantic.headline, then the extra ones."""
    named = list(cfg.semantic.headline)
    return named + [name for name in extra_benchmark_files(cfg) if name not in named]


def load_benchmarks(cfg: DictConfig) -> tuple[dict[str, WordPairs], Analogies]:
    pair_files, analogy_file = benchmark_files(cfg)
    pairs = {name: read_word_pairs(path, name) for name, path in pair_files.items()}
    return pairs, read_analogies(analogy_file)


def benchmark_words(cfg: DictConfig) -> set[str]:
    """Every word of the similarity and analogy benchmarks (lowercased under that policy)."""
    benchmarks, analogies = load_benchmarks(cfg)
    words = {w for question in analogies.questions for w in question}
    for pairs in benchmarks.values():
        words.update(pairs.first, pairs.second)
    return {w.lower() for w in words} if cfg.similarity.lowercase else words
