"""Tokenizing and vocabulary.

The tokenizer follows the cleaning of Kim (2014): keep ASCII letters, digits and the
punctuation ( ) , ! ? ' `; split English clitics ('s 've n't 're 'd 'll) off their word;
put spaces around , ! ( ) ?; collapse whitespace; lowercase unless the dataset keeps case
(Kim kept TREC's case because capitals mark names in questions). Anything else, non-ASCII
letters included, becomes a space, as in Kim's pipeline.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

_NOT_KEPT = re.compile(r"[^A-Za-z0-9(),!?'`]")
_CLITIC = re.compile(r"(n't|'s|'ve|'re|'d|'ll)\b")
_SPACED_PUNCT = re.compile(r"([,!()?])")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


def clean(text: str, lowercase: bool = True, strip_html: bool = False) -> str:
    if strip_html:
        text = _HTML_BREAK.sub(" ", text)
    text = _NOT_KEPT.sub(" ", text)
    text = _CLITIC.sub(r" \1", text)
    text = _SPACED_PUNCT.sub(r" \1 ", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return text.lower() if lowercase else text


def tokenize(text: str, lowercase: bool = True, strip_html: bool = False) -> list[str]:
    cleaned = clean(text, lowercase=lowercase, strip_html=strip_html)
    return cleaned.split(" ") if cleaned else []


@dataclass(frozen=True)
class Vocabulary:
    """Word list whose index is the embedding row: 0 is padding, 1 stands for unknown words."""

    words: tuple[str, ...]

    @classmethod
    def build(
        cls, token_lists: Iterable[Sequence[str]], min_count: int = 1, extra: Iterable[str] = ()
    ) -> Vocabulary:
        """Words of the training examples by falling frequency (ties alphabetical), then extras."""
        counts = Counter(token for tokens in token_lists for token in tokens)
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        seen = set(ranked)
        added = sorted({w for w in extra if w not in seen and w not in (PAD, UNK)})
        return cls((PAD, UNK, *ranked, *added))

    def __len__(self) -> int:
        return len(self.words)

    @cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, token_lists: Sequence[Sequence[str]]) -> list[np.ndarray]:
        index = self.index
        return [
            np.array([index.get(t, UNK_ID) for t in tokens], dtype=np.int32)
            for tokens in token_lists
        ]
