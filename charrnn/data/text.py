"""Text in, integer ids out: the vocabulary, the train/validation split and the TBPTT batch streams."""

import codecs
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from charrnn.data.datasets import reference_name, resolve
from charrnn.errors import CharRNNError


def _code_points(text: str) -> np.ndarray:
    """Unicode code points of `text` as uint32, without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise CharRNNError(f"a vocabulary of {vocab_size} characters is too large.")


class Vocab:
    """Characters <-> ids. Sorted by code point, so the same text always gives the same ids."""

    def __init__(self, chars: Sequence[str]) -> None:
        self.chars = list(chars)
        self.codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        if len(self.chars) == 0 or np.any(np.diff(self.codes.astype(np.int64)) <= 0):
            raise CharRNNError("a vocabulary must be a non-empty list of distinct characters in sorted order.")
        self.dtype = id_dtype(len(self.chars))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls([chr(c) for c in np.unique(_code_points(text))])

    def __len__(self) -> int:
        return len(self.chars)

    def unknown(self, text: str) -> list[str]:
        """The characters of `text` that are not in the vocabulary, each once, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.index))

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text`; every character must be in the vocabulary (check with `unknown` first)."""
        codes = _code_points(text)
        ids = np.searchsorted(self.codes, codes)
        if ids.size and (ids.max() >= len(self.codes) or np.any(self.codes[ids] != codes)):
            missing = ", ".join(repr(c) for c in self.unknown(text))
            raise CharRNNError(f"these characters are not in the model's vocabulary: {missing}.")
        return ids.astype(self.dtype)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self.chars[i] for i in ids)


PIECE_BYTES = 1 << 21  # files are read and encoded 2 MB at a time: a big corpus never lives as one str


def _decoder(encoding: str) -> codecs.IncrementalDecoder:
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise CharRNNError(f"--encoding {encoding!r} is not a known text encoding; try utf-8 or latin-1.") from None
    if info.name == "utf-8":
        info = codecs.lookup("utf-8-sig")  # drops a byte-order mark
    return info.incrementaldecoder()


def read_pieces(
    path: Path,
    encoding: str = "utf-8",
    piece_bytes: int = PIECE_BYTES,
    newline: str = "keep",
    what: str = "corpus file",
) -> Iterator[str]:
    """The text of one corpus file in pieces; every way it can fail is one sentence naming the file (as `what`: a
    "corpus file", or a "file" a command reads) and the fix.

    Line endings are kept as they are (CRLF is two characters); newline="lf" turns CRLF and CR into LF.
    """
    if not path.exists():
        raise CharRNNError(f"{what} {path} does not exist; check the path.")
    if path.is_dir():
        raise CharRNNError(f"{what.split()[0]} {path} is a directory; pass the text file(s) inside it.")
    binary = CharRNNError(f"{what} {path} looks like binary data (it holds NUL bytes), not text; pass a text file.")
    decoder = _decoder(encoding)
    offset, held = 0, ""
    with path.open("rb") as f:
        while True:
            block = f.read(piece_bytes)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                if b"\x00" in block:
                    raise binary from None
                where = offset - len(pending) + e.start
                raise CharRNNError(
                    f"{what} {path} is not valid {e.encoding} (byte 0x{(pending + block)[e.start]:02x} at "
                    f"offset {where}); if it uses another encoding, pass it with --encoding, e.g. --encoding latin-1."
                ) from None
            if "\x00" in text:
                raise binary
            offset += len(block)
            if newline == "lf":
                text = held + text
                held = "\r" if block and text.endswith("\r") else ""  # a CRLF may straddle two pieces
                text = text[: len(text) - len(held)].replace("\r\n", "\n").replace("\r", "\n")
            if text:
                yield text
            if not block:
                return


CHAR_NAMES = {" ": "space", "\n": "\\n newline", "\r": "\\r return", "\t": "\\t tab"}


def char_name(c: str) -> str:
    """A printable name for a character: itself, or e.g. "space", "\\n newline", "U+0007"."""
    if c in CHAR_NAMES:
        return CHAR_NAMES[c]
    return c if c.isprintable() else f"U+{ord(c):04X}"


def printable(text: str) -> str:
    """`text` with line breaks, tabs and other unprintable characters escaped, for one line of output."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] if ord(c) < 128 else f"\\u{ord(c):04x}" for c in text)


def text_lines(text: str) -> list[str]:
    """The lines of a file as its writer meant them: split at LF, a CR before it dropped (CRLF files), and no other
    character taken for a line break (str.splitlines also splits at \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028 and
    \\u2029, which may be part of an input)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_text(path: Path, encoding: str = "utf-8", newline: str = "keep", what: str = "corpus file") -> str:
    """A whole (small) text file, e.g. a prime; corpora go through `encode_files` instead."""
    text = "".join(read_pieces(resolve(path), encoding, newline=newline, what=what))
    if not text:
        raise CharRNNError(f"{what} {path} is empty; give it some text.")
    return text


CONTROL = [c for c in range(32) if c not in (9, 10, 11, 12, 13)] + [127]  # not found in text


def encode_files(
    paths: Sequence[Path],
    encoding: str = "utf-8",
    out: Path | None = None,
    piece_bytes: int = PIECE_BYTES,
    vocab: Vocab | None = None,
    newline: str = "keep",
    max_vocab: int = 0,
) -> tuple[Vocab, np.ndarray]:
    """Read the files twice, a piece at a time: once to find the vocabulary and length, once to write the ids.

    With `out`, the ids go to a memory-mapped `.npy` file there instead of memory; it is created only once the
    first pass has found the text good. With `vocab` (fine-tuning, resuming), the text is encoded with that
    vocabulary, and a character outside it is an error that lists them all. A vocabulary larger than
    `max_vocab` (if > 0) is an error: it usually means the wrong --encoding.
    """
    counts = np.zeros(128, np.int64)  # occurrences of each code point
    for path in paths:
        file_counts = np.zeros(128, np.int64)
        for piece in read_pieces(path, encoding, piece_bytes, newline):
            piece_counts = np.bincount(_code_points(piece))
            if len(piece_counts) > len(file_counts):
                file_counts = np.pad(file_counts, (0, len(piece_counts) - len(file_counts)))
            file_counts[: len(piece_counts)] += piece_counts
        seen = int(file_counts.sum())
        if seen == 0:
            raise CharRNNError(f"corpus file {path} is empty; give it some text to learn from.")
        if file_counts[CONTROL].sum() > 0.01 * seen:
            raise CharRNNError(
                f"corpus file {path} looks like binary data ({int(file_counts[CONTROL].sum()):,} control "
                "characters), not text; pass a text file."
            )
        if len(file_counts) > len(counts):
            counts = np.pad(counts, (0, len(file_counts) - len(counts)))
        counts[: len(file_counts)] += file_counts
    codes = np.flatnonzero(counts)
    if vocab is None:
        if max_vocab and len(codes) > max_vocab:
            raise CharRNNError(
                f"the corpus has {len(codes):,} distinct characters, more than --max-vocab {max_vocab:,}; for a "
                "language with many characters (e.g. Chinese) raise --max-vocab, otherwise check --encoding "
                "(text read with the wrong encoding has many odd characters)."
            )
        vocab = Vocab([chr(c) for c in codes])
    else:
        missing = np.setdiff1d(codes, vocab.codes)
        if missing.size:
            listed = ", ".join(repr(chr(c)) for c in missing[:40]) + (" ..." if missing.size > 40 else "")
            raise CharRNNError(
                f"the corpus has {missing.size} characters that the model's vocabulary lacks: {listed}; "
                "remove them from the text or train a new model."
            )
        codes = vocab.codes.astype(np.int64)
        counts = np.pad(counts, (0, max(0, int(codes.max()) + 1 - len(counts))))
    n = int(counts.sum())
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        ids = np.lib.format.open_memmap(out, "w+", vocab.dtype, (n,))
    else:
        ids = np.empty(n, vocab.dtype)
    table = np.zeros(len(counts), vocab.dtype)  # code point -> id
    table[codes] = np.arange(len(codes))
    start = 0
    for path in paths:
        for piece in read_pieces(path, encoding, piece_bytes, newline):
            piece_codes = _code_points(piece)
            np.take(table, piece_codes, out=ids[start : start + len(piece_codes)])
            start += len(piece_codes)
    return vocab, ids


def _cached_ids(paths: Sequence[Path], cache_dir: Path, **options: Any) -> tuple[Vocab, np.ndarray]:
    """Encode once into cache_dir/corpus.npy (memory-mapped); reuse it while the files are unchanged."""
    sources = []
    for path in paths:
        if not path.is_file():  # missing or a directory: the same sentence as an uncached read
            next(read_pieces(path), None)
        stat = path.stat()
        sources.append({"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    vocab = options.get("vocab")
    key = {"sources": sources, **options, "vocab": vocab.chars if vocab else None}
    ids_path, meta_path = cache_dir / "corpus.npy", cache_dir / "corpus.json"
    if ids_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("key") == key:
                return Vocab(meta["vocab"]), np.load(ids_path, mmap_mode="r")
        except (ValueError, KeyError, OSError, CharRNNError):
            pass  # a damaged cache is rebuilt below
    tmp = cache_dir / "corpus.npy.tmp"
    try:
        vocab, ids = encode_files(paths, out=tmp, **options)
        ids.flush()
        del ids
        os.replace(tmp, ids_path)
    finally:
        tmp.unlink(missing_ok=True)
    meta_path.write_text(json.dumps({"key": key, "vocab": vocab.chars}, ensure_ascii=False), encoding="utf-8")
    return vocab, np.load(ids_path, mmap_mode="r")


@dataclass
class Corpus:
    """The encoded text, split into a training head and a held-out validation tail."""

    vocab: Vocab
    train: np.ndarray
    val: np.ndarray
    name: str


def load_corpus(
    paths: Sequence[str | Path],
    encoding: str = "utf-8",
    val_frac: float = 0.1,
    cache_dir: Path | None = None,
    vocab: Vocab | None = None,
    newline: str = "keep",
    max_vocab: int = 0,
) -> Corpus:
    """Read and join the files, build the vocabulary (or use `vocab`), hold out the last `val_frac`.

    With `cache_dir`, the ids are kept there as a memory-mapped file and reused while the files are unchanged.
    """
    if not paths:
        raise CharRNNError("no corpus given; pass a text file, e.g. `charrnn train data/pond.txt`.")
    files = [resolve(p) for p in paths]
    options = {"encoding": encoding, "vocab": vocab, "newline": newline, "max_vocab": max_vocab}
    vocab, ids = _cached_ids(files, cache_dir, **options) if cache_dir else encode_files(files, **options)
    n_val = int(len(ids) * val_frac)
    if val_frac > 0 and n_val < 2:
        raise CharRNNError(
            f"--val-frac {val_frac} holds out {n_val} of {len(ids)} characters, too few to validate on; "
            "raise --val-frac, use a longer corpus, or pass --val-frac 0 to skip validation."
        )
    split = len(ids) - n_val
    return Corpus(vocab=vocab, train=ids[:split], val=ids[split:], name=reference_name(paths[0]))


class Batches:
    """Stateful truncated-BPTT streams over the training ids.

    The text is cut into `batch_size` contiguous streams (rows); step k of an epoch reads columns
    [k*T, (k+1)*T) of every row, so each stream's hidden state can carry over from one chunk to the next.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int) -> None:
        stream_len = (len(ids) - 1) // batch_size
        self.chunks_per_epoch = stream_len // seq_len
        if self.chunks_per_epoch < 1:
            fits = (len(ids) - 1) // seq_len
            hint = f"--batch-size {fits} fits this --seq-len" if fits >= 1 else "use a smaller --seq-len"
            raise CharRNNError(
                f"the training text has {len(ids)} characters, too few for --batch-size {batch_size} × "
                f"--seq-len {seq_len} (needs at least {batch_size * seq_len + 1}); {hint}, or give more text."
            )
        n = stream_len * batch_size
        self.inputs = ids[:n].reshape(batch_size, stream_len)
        self.targets = ids[1 : n + 1].reshape(batch_size, stream_len)
        self.seq_len = seq_len

    def chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-character targets of chunk `k`, time-major (T, B)."""
        cols = slice(k * self.seq_len, (k + 1) * self.seq_len)
        return np.ascontiguousarray(self.inputs[:, cols].T), np.ascontiguousarray(self.targets[:, cols].T)
