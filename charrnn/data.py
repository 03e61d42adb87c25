"""Text in, integer ids out: the vocabulary, the train/validation split and the TBPTT batch streams."""

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """Read one corpus file; every way it can fail becomes one sentence naming the file and the fix."""
    if not path.exists():
        raise CharRNNError(f"corpus file {path} does not exist; check the path.")
    if path.is_dir():
        raise CharRNNError(f"corpus {path} is a directory; pass the text file(s) inside it.")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CharRNNError(f"--encoding {encoding!r} is not a known text encoding; try utf-8 or latin-1.") from None
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # drops a byte-order mark
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise CharRNNError(
            f"corpus file {path} is not valid {e.encoding} (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "if it uses another encoding, pass it with --encoding, e.g. --encoding latin-1."
        ) from None
    if not text:
        raise CharRNNError(f"corpus file {path} is empty; give it some text to learn from.")
    return text


@dataclass
class Corpus:
    """The encoded text, split into a training head and a held-out validation tail."""

    vocab: Vocab
    train: np.ndarray
    val: np.ndarray
    name: str


def load_corpus(paths: Sequence[str | Path], encoding: str = "utf-8", val_frac: float = 0.1) -> Corpus:
    """Read and join the files, build the vocabulary, hold out the last `val_frac` for validation."""
    if not paths:
        raise CharRNNError("no corpus given; pass a text file, e.g. `charrnn train data/pond.txt`.")
    text = "".join(read_text(Path(p), encoding) for p in paths)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    n_val = int(len(ids) * val_frac)
    if val_frac > 0 and n_val < 2:
        raise CharRNNError(
            f"--val-frac {val_frac} holds out {n_val} of {len(ids)} characters, too few to validate on; "
            "raise --val-frac, use a longer corpus, or pass --val-frac 0 to skip validation."
        )
    split = len(ids) - n_val
    return Corpus(vocab=vocab, train=ids[:split], val=ids[split:], name=Path(paths[0]).stem)


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
