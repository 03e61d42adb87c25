"""Reading text, the vocabulary, the validation split and the TBPTT streams."""

import numpy as np
import pytest

from charrnn.data.text import Batches, Vocab, encode_files, id_dtype, load_corpus, read_text
from charrnn.errors import CharRNNError


def test_vocabulary_is_sorted_code_points_and_stable():
    vocab = Vocab.from_text("bébé à la plage\n")
    assert vocab.chars == sorted(set("bébé à la plage\n"))
    assert Vocab.from_text("plage bébé à la\n").chars == vocab.chars
    assert vocab.decode(vocab.encode("à la plage")) == "à la plage"


def test_ids_use_the_smallest_unsigned_dtype():
    assert id_dtype(65) == np.uint8
    assert id_dtype(256) == np.uint8
    assert id_dtype(257) == np.uint16
    assert id_dtype(70_000) == np.uint32
    assert Vocab.from_text("".join(chr(0x4E00 + i) for i in range(300))).encode("一").dtype == np.uint16


def test_unknown_characters_are_named():
    vocab = Vocab.from_text("abc")
    assert vocab.unknown("abxcyx") == ["x", "y"]
    with pytest.raises(CharRNNError, match="'x', 'y'"):
        vocab.encode("abxcy")


def test_utf8_bom_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello")
    assert read_text(path) == "hello"


def test_crlf_is_kept(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"a\r\nb\r\n")
    assert read_text(path) == "a\r\nb\r\n"


def test_invalid_utf8_names_the_file_and_suggests_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café".encode("latin-1"))
    with pytest.raises(CharRNNError, match=r"latin\.txt is not valid utf-8.*--encoding"):
        read_text(path)
    assert read_text(path, "latin-1") == "café"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_text(""), "is empty"),
    ],
)
def test_bad_corpus_files(tmp_path, make, message):
    path = tmp_path / "corpus.txt"
    make(path)
    with pytest.raises(CharRNNError, match=message):
        read_text(path)


def test_validation_is_the_contiguous_tail(tmp_path):
    path = tmp_path / "c.txt"
    text = "abcdefghij" * 10
    path.write_text(text)
    corpus = load_corpus([path], val_frac=0.1)
    assert corpus.vocab.decode(corpus.train) == text[:90]
    assert corpus.vocab.decode(corpus.val) == text[90:]
    assert load_corpus([path], val_frac=0.0).val.size == 0


def test_several_files_are_joined_in_order(tmp_path):
    (tmp_path / "a.txt").write_text("first ")
    (tmp_path / "b.txt").write_text("second")
    corpus = load_corpus([tmp_path / "a.txt", tmp_path / "b.txt"], val_frac=0.0)
    assert corpus.vocab.decode(corpus.train) == "first second"


def test_too_small_validation_split_is_an_error(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("abcdefghij")
    with pytest.raises(CharRNNError, match="--val-frac"):
        load_corpus([path], val_frac=0.1)


def test_streams_are_contiguous_and_targets_are_the_next_character():
    ids = np.arange(101, dtype=np.uint8)
    batches = Batches(ids, batch_size=4, seq_len=5)  # 4 streams of 25, 5 chunks each
    assert batches.chunks_per_epoch == 5
    x0, y0 = batches.chunk(0)
    x1, _ = batches.chunk(1)
    assert x0.shape == (5, 4)
    np.testing.assert_array_equal(x0[:, 1], [25, 26, 27, 28, 29])
    np.testing.assert_array_equal(x1[:, 1], [30, 31, 32, 33, 34])  # the same stream goes on
    np.testing.assert_array_equal(y0, x0 + 1)


def test_text_too_short_for_one_chunk_says_what_fits():
    with pytest.raises(CharRNNError, match=r"--batch-size 3 fits"):
        Batches(np.zeros(200, np.uint8), batch_size=32, seq_len=64)


def test_reading_in_pieces_equals_reading_whole(tmp_path):
    text = "héllo wörld — ünïcode ✓ " * 50
    path = tmp_path / "u.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    vocab, ids = encode_files([path], piece_bytes=7)  # pieces split multi-byte characters
    assert vocab.decode(ids) == text
    assert vocab.chars == Vocab.from_text(text).chars


def test_invalid_byte_offset_is_exact_across_pieces(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("aé".encode() * 20 + b"\xff" + b"tail")
    with pytest.raises(CharRNNError, match=r"byte 0xff at offset 60\)"):
        encode_files([path], piece_bytes=5)


def test_ids_are_cached_memory_mapped_and_rebuilt_when_the_file_changes(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("abcabcabc" * 10)
    first = load_corpus([path], cache_dir=tmp_path / "run")
    assert isinstance(first.train, np.memmap)
    assert (tmp_path / "run" / "corpus.npy").is_file()
    again = load_corpus([path], cache_dir=tmp_path / "run")
    assert again.vocab.chars == first.vocab.chars
    np.testing.assert_array_equal(again.train, first.train)
    path.write_text("xyz" * 40)
    changed = load_corpus([path], cache_dir=tmp_path / "run")
    assert changed.vocab.chars == ["x", "y", "z"]


def test_a_bad_corpus_writes_nothing(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(CharRNNError):
        load_corpus([path], cache_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("chars", [[], ["b", "a"], ["a", "a", "b"]])
def test_a_vocabulary_is_distinct_characters_in_sorted_order(chars):
    """The same text always gives the same ids: a vocabulary out of order (a damaged checkpoint's) is refused."""
    with pytest.raises(CharRNNError, match="distinct characters in sorted order"):
        Vocab(chars)
