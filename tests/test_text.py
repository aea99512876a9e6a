import numpy as np

from embcompare.data.text import PAD_ID, UNK_ID, Vocabulary, clean, tokenize


def test_clean_splits_clitics_and_punctuation_like_kim():
    assert clean("It's a don't-miss film, isn't it?!") == "it 's a do n't miss film , is n't it ? !"


def test_clean_drops_characters_outside_kims_set():
    assert clean('Café — 5 stars; "wow"') == "caf 5 stars wow"


def test_case_kept_when_asked_and_html_breaks_removed():
    assert tokenize("What is NASA ?", lowercase=False) == ["What", "is", "NASA", "?"]
    assert tokenize("Great.<br /><br />Bad", strip_html=True) == ["great", "bad"]
    assert tokenize("   ") == []


def test_vocabulary_orders_by_frequency_then_alphabet_and_reserves_rows():
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]], extra=["zz", "a"])
    assert vocab.words == ("<pad>", "<unk>", "b", "a", "c", "zz")
    assert vocab.index["b"] == 2


def test_vocabulary_min_count_and_unknown_words_map_to_unk():
    vocab = Vocabulary.build([["a", "a", "b"]], min_count=2)
    assert vocab.words == ("<pad>", "<unk>", "a")
    (encoded,) = vocab.encode([["a", "b", "never"]])
    np.testing.assert_array_equal(encoded, [2, UNK_ID, UNK_ID])
    assert PAD_ID == 0
