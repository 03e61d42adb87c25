"""Supervised data: files of `input<TAB>target` lines, their vocabularies, the train/validation split, and batches
of examples of similar length, padded at the end.

A task names the kind of its targets: a "label" (any string; classify), an "output" with one character per input
character (tag), or a "target" sequence of its own length, of characters or of space-separated words (tokens;
seq2seq). Vocabularies come from the training examples and are stored in the checkpoint; a target vocabulary
begins with the end-of-sequence symbol EOS.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charrnn.data.datasets import resolve
from charrnn.data.text import Vocab, printable, read_text, text_lines
from charrnn.errors import CharRNNError


@dataclass
class Examples:
    """Pairs as read from a file, with the line each came from (for messages)."""

    inputs: list[str]
    targets: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, keep: Sequence[int]) -> "Examples":
        return Examples([self.inputs[i] for i in keep], [self.targets[i] for i in keep], [self.lines[i] for i in keep])


LABEL, OUTPUT, TARGET = "label", "output", "target"  # the kinds of targets, named as a message names them


def read_examples(path: Path, targets: str, encoding: str = "utf-8") -> Examples:
    """Every non-empty line of `path` as input<TAB>target (`targets`: LABEL, OUTPUT or TARGET); a malformed line is
    an error naming its number."""
    text = read_text(path, encoding)
    examples = Examples([], [], [])
    for number, line in enumerate(text_lines(text), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            what = "has no tab" if len(fields) == 1 else f"has {len(fields) - 1} tabs"
            raise CharRNNError(f"{path} line {number} {what}; each line must be input<TAB>{targets}, with one tab.")
        source, target = fields
        if not source:
            raise CharRNNError(f"{path} line {number} has an empty input; every example needs some text.")
        if not target.strip():
            raise CharRNNError(f"{path} line {number} has an empty {targets}; give every example one.")
        if targets == OUTPUT and len(target) != len(source):
            raise CharRNNError(
                f"{path} line {number}: the output has {len(target)} characters but the input {len(source)}; "
                "an output needs one character per input character."
            )
        examples.inputs.append(source)
        examples.targets.append(target)
        examples.lines.append(number)
    if not examples.inputs:
        raise CharRNNError(f"{path} holds no examples; each line must be input<TAB>{targets}.")
    return examples


EOS = "</s>"  # ends every target sequence, and starts the decoder


def tokens(target: str, units: str) -> list[str]:
    """A target sequence as output tokens: its characters, or its space-separated words."""
    return target.split() if units == "words" else list(target)


def output_symbols(kind: str, targets: Sequence[str], units: str = "chars") -> list[str]:
    """The output vocabulary: the labels, the output characters, or EOS and the target tokens."""
    if kind == LABEL:
        return sorted(set(targets))
    if kind == TARGET:
        return [EOS, *sorted({t for target in targets for t in tokens(target, units)})]
    return Vocab.from_text("".join(targets)).chars


def unknown_report(counts: Counter, what: str, where: str) -> str:
    """One sentence on the symbols `where` has and the model does not: which, and how many times."""
    listed = ", ".join(f"{printable(s)!r} ({n})" for s, n in counts.most_common(10))
    more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
    what = what if len(counts) > 1 else what.removesuffix("s")
    times = "once" if counts.total() == 1 else f"{counts.total()} times in all"
    return f"{where} has {len(counts)} {what} the model never saw in training, {times}: {listed}{more}"


SKIP_ADVICE = "remove them or pass --unknown skip to leave them out"


def unseen_characters(vocab: Vocab, texts: Sequence[str], unknown: str, where: str) -> Counter:
    """The characters of `texts` (`where`, in a message) outside `vocab`, counted: the one policy for characters a
    model never saw. With unknown="error" any is a CharRNNError that names them; with "skip" the caller leaves them
    out (and the command line says which, from this count)."""
    if unknown not in ("error", "skip"):
        raise CharRNNError(f"--unknown must be error or skip (got {unknown!r}).")
    unseen = Counter(c for text in texts for c in text if c not in vocab.index)
    if unseen and unknown == "error":
        raise CharRNNError(f"{unknown_report(unseen, 'characters', where)}; {SKIP_ADVICE}.")
    return unseen


def check_known(
    examples: Examples,
    vocab: Vocab,
    outputs: list[str],
    kind: str,
    where: str,
    unknown: str,
    units: str = "chars",
    advice: str = SKIP_ADVICE,
) -> Examples:
    """Examples the model can read and score: unseen labels or output tokens are an error; unseen input characters
    are an error too (ending with `advice`, what the user can do where this is called), or, with unknown="skip",
    are dropped (with their output character, for OUTPUT targets)."""
    known_outputs = set(outputs)
    if kind == LABEL:
        missing = Counter(t for t in examples.targets if t not in known_outputs)
        what = "labels"
    else:
        split_target = (lambda t: tokens(t, units)) if kind == TARGET else list
        missing = Counter(c for t in examples.targets for c in split_target(t) if c not in known_outputs)
        what = "output characters" if kind == OUTPUT or units == "chars" else "target words"
    if missing:
        raise CharRNNError(unknown_report(missing, what, where) + "; they cannot be scored.")
    unseen = Counter(c for text in examples.inputs for c in text if c not in vocab.index)
    if not unseen:
        return examples
    if unknown != "skip":
        raise CharRNNError(unknown_report(unseen, "input characters", where) + f"; {advice}.")
    kept = Examples([], [], [])
    for source, target, line in zip(examples.inputs, examples.targets, examples.lines, strict=True):
        keep = [i for i, c in enumerate(source) if c in vocab.index]
        if not keep:
            continue
        kept.inputs.append("".join(source[i] for i in keep))
        kept.targets.append("".join(target[i] for i in keep) if kind == OUTPUT else target)
        kept.lines.append(line)
    return kept


def split(
    examples: Examples, val_frac: float, seed: int, stratify: bool, by_input: bool = False
) -> tuple[Examples, Examples]:
    """Hold out a seeded `val_frac` of the examples, the same share of each label when `stratify`; with `by_input`,
    of the distinct inputs, each held out with all its lines (a word and all its pronunciations)."""
    rng = np.random.default_rng([seed, 3])
    held: list[int] = []
    if by_input:
        sources = sorted(set(examples.inputs))
        rng.shuffle(sources)
        chosen = set(sources[: round(len(sources) * val_frac)])
        held = [i for i, s in enumerate(examples.inputs) if s in chosen]
    else:
        groups = Counter(examples.targets) if stratify else {None: len(examples)}
        for label in sorted(groups, key=str):
            members = np.array([i for i, t in enumerate(examples.targets) if not stratify or t == label])
            rng.shuffle(members)
            held += members[: round(len(members) * val_frac)].tolist()
    held_set = set(held)
    train = [i for i in range(len(examples)) if i not in held_set]
    return examples.subset(train), examples.subset(sorted(held))


@dataclass
class Encoded:
    """Examples as ids: one array per input, and a label id or an array of output ids each."""

    inputs: list[np.ndarray]
    targets: list[np.ndarray] | np.ndarray
    examples: Examples

    def __len__(self) -> int:
        return len(self.inputs)


def encode(
    examples: Examples,
    vocab: Vocab,
    outputs: list[str],
    kind: str,
    max_len: int = 0,
    units: str = "chars",
    where: str = "the examples",
) -> tuple[Encoded, int]:
    """Ids of every example, inputs cut to `max_len` characters (0: no limit); also returns how many were cut.

    An example with a TARGET sequence longer than `max_len` (its source in characters or its target in tokens) is
    an error instead: cutting either side would teach a wrong pair."""
    cut = 0
    inputs, targets = [], []
    index = {s: i for i, s in enumerate(outputs)}
    out_vocab = Vocab(outputs) if kind == OUTPUT else None
    for source, target, line in zip(examples.inputs, examples.targets, examples.lines, strict=True):
        if kind == TARGET:
            target_ids = np.array([index[t] for t in tokens(target, units)], dtype=np.int64)
            for side, size, unit in (("source", len(source), "characters"), ("target", len(target_ids), units)):
                if max_len and size > max_len:
                    raise CharRNNError(
                        f"{where} line {line}: the {side} has {size} {unit}, more than --max-len {max_len}; raise "
                        "--max-len or remove the line."
                    )
            inputs.append(vocab.encode(source))
            targets.append(target_ids)
            continue
        if max_len and len(source) > max_len:
            cut += 1
            source, target = source[:max_len], (target[:max_len] if kind == OUTPUT else target)
        inputs.append(vocab.encode(source))
        targets.append(out_vocab.encode(target) if out_vocab else index[target])
    labels = np.array(targets, dtype=np.int64) if kind == LABEL else targets
    return Encoded(inputs, labels, examples), cut


@dataclass
class ExampleData:
    """The training and validation examples of a task, encoded, with their vocabularies."""

    vocab: Vocab  # input characters
    outputs: list[str]  # labels, output characters, or EOS and the target tokens
    train: Encoded
    val: Encoded
    name: str
    cut: int  # examples whose input was cut to --max-len


def load_examples(
    path: str | Path,
    kind: str,
    encoding: str = "utf-8",
    val_file: str = "",
    val_frac: float = 0.1,
    seed: int = 0,
    max_len: int = 0,
    vocab: Vocab | None = None,
    outputs: list[str] | None = None,
    units: str = "chars",
) -> ExampleData:
    """Read, check, split and encode the examples; with `vocab` and `outputs` (resuming), keep those vocabularies."""
    path = resolve(path)
    examples = read_examples(path, kind, encoding)
    if val_file:
        train, val = examples, read_examples(resolve(val_file), kind, encoding)
    else:
        train, val = split(examples, val_frac, seed, stratify=kind == LABEL, by_input=kind == TARGET)
        if val_frac > 0 and not len(val):
            raise CharRNNError(
                f"--val-frac {val_frac} holds out no example of the {len(examples)} in {path}; raise --val-frac, "
                "give a --val-file, or pass --val-frac 0 to skip validation."
            )
    resuming = vocab is not None
    if not resuming:
        vocab = Vocab.from_text("".join(train.inputs))
        outputs = output_symbols(kind, train.targets, units)
    if kind == LABEL and len(outputs) < 2:
        raise CharRNNError(
            f"{path} has a single label ({outputs[0]!r}); a classifier needs examples of at least two labels."
        )
    val_source = f"--val-file {val_file}" if val_file else str(path)
    if resuming:
        advice = "the model's vocabulary is fixed, so remove them, or train a new model on this file"
        train = check_known(train, vocab, outputs, kind, str(path), "error", units, advice)
    elif val_file:
        advice = f"remove those lines from {val_file}, or add training examples that have them to {path}"
    else:
        advice = f"they occur only in held-out examples of {path}; remove those lines, or give a --val-file"
    val = check_known(val, vocab, outputs, kind, val_source, "error", units, advice)
    train_encoded, cut = encode(train, vocab, outputs, kind, max_len, units, str(path))
    val_encoded, val_cut = encode(val, vocab, outputs, kind, max_len, units, val_source)
    return ExampleData(vocab, outputs, train_encoded, val_encoded, path.stem, cut + val_cut)


class ExampleBatches:
    """Batches of examples of similar length, in an order fixed by the seed and the epoch.

    Each epoch shuffles the examples, sorts each pool of `pool` batches' worth by length (so a batch pads little),
    cuts the pools into batches, each longest first (its layers then compute only the rows still reading), and
    shuffles the batches. Which examples step k reads is a function of (seed, k)
    alone, so a resumed run reads exactly what an unbroken one would.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, pool: int = 50) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.pool = batch_size, seed, pool
        self.steps_per_epoch = math.ceil(len(self.lengths) / batch_size)
        self._epoch, self._order = -1, []

    def indices(self, step: int) -> np.ndarray:
        """The examples (indices) of update number `step`."""
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self._epoch_order(epoch)
        return self._order[k]

    def _epoch_order(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, 2, epoch])
        shuffled = rng.permutation(len(self.lengths))
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(shuffled), size):
            members = shuffled[start : start + size]
            members = members[np.argsort(self.lengths[members], kind="stable")]
            batches += [members[i : i + self.batch_size][::-1] for i in range(0, len(members), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]
