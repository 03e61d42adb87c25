"""The PyTorch side of charrnn's comparisons: a character-level RNN, GRU or LSTM trained on the CPU the way charrnn
trains one, so that speed and loss can be compared at the same work.

    .venv-torch/bin/python benchmarks/torch_reference.py --corpus FILE --cell gru --hidden 384 --steps 1500

It runs in a virtual environment of its own that has PyTorch (never charrnn's):

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.13.0 numpy

The protocol, the same as charrnn's `train` for a language model:
- model: an embedding of --embed columns (or one-hot input with --embed 0), --layers of nn.LSTM / nn.GRU / nn.RNN
  (tanh) with --hidden units and --dropout between layers, a linear layer to the vocabulary; float32;
- data: the file's characters (read as text, so CRLF becomes LF), the last --val-frac held out; the rest cut into
  --batch streams read --seq characters a step, the state carried between steps and reset when the streams wrap;
- training: cross-entropy, Adam, gradients clipped to a global norm of --clip, the learning rate warmed up over
  --warmup-steps, then constant, cosine or wsd (held, then linear to --min-lr over the last --decay-frac) over the
  run's progress: the further along of step / --steps and training time / --time-budget;
- validation: the mean cross-entropy over the whole held-out tail read as one stream from the zero state, in
  chunks of --eval-chunk with the state carried, dropout off; its time is not training time;
- speed: characters a second over the steps after the first --warmup ones.

It prints `EVAL` lines (training time, step, validation loss), a `RESULT` line (steps, chars/s) and with
--sample-bench a `SAMPLE` line (characters a second generated one at a time), which benchmarks/quality.py and
benchmarks/speed.py read.
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class CharModel(nn.Module):
    """Characters in, next-character logits out; `rnn` and `head` are PyTorch's own modules."""

    def __init__(self, cell: str, vocab: int, embed: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.vocab = vocab
        self.embedding = nn.Embedding(vocab, embed) if embed else None
        between = dropout if layers > 1 else 0.0
        self.rnn = CELLS[cell](embed or vocab, hidden, num_layers=layers, batch_first=True, dropout=between)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        x = self.embedding(ids) if self.embedding is not None else functional.one_hot(ids, self.vocab).float()
        out, state = self.rnn(x, state)
        return self.head(out), state


def detach_state(state: object) -> object:
    """The state without its history, so that back-propagation stops at the chunk's start."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return None if state is None else state.detach()


@torch.no_grad()
def evaluate(model: CharModel, ids: torch.Tensor, chunk: int) -> float:
    """Mean cross-entropy (nats a character) of predicting ids[1:] from ids[:-1], as one stream."""
    model.eval()
    state, total = None, 0.0
    for start in range(0, len(ids) - 1, chunk):
        x, y = ids[start : start + chunk], ids[start + 1 : start + chunk + 1]
        x = x[: len(y)]
        logits, state = model(x.unsqueeze(0), state)
        total += functional.cross_entropy(logits[0], y, reduction="sum").item()
    model.train()
    return total / (len(ids) - 1)


@torch.no_grad()
def sampling_speed(model: CharModel, chars: int, seed: int) -> float:
    """Characters a second drawn one at a time (batch 1, temperature 1), after 20 untimed steps."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    x, state = torch.zeros((1, 1), dtype=torch.long), None
    for _ in range(20):
        _, state = model(x, state)
    started = time.perf_counter()
    for _ in range(chars):
        logits, state = model(x, state)
        x = torch.multinomial(torch.softmax(logits[0, -1], -1), 1, generator=generator).view(1, 1)
    model.train()
    return chars / (time.perf_counter() - started)


def learning_rate(args: argparse.Namespace, step: int, seconds: float) -> float:
    progress = max(step / args.steps if args.steps else 0.0, seconds / args.time_budget if args.time_budget else 0.0)
    progress = min(progress, 1.0)
    if args.schedule == "cosine":
        lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))
    elif args.schedule == "wsd" and progress > 1 - args.decay_frac:
        lr = args.lr + (args.min_lr - args.lr) * (progress - (1 - args.decay_frac)) / args.decay_frac
    else:
        lr = args.lr
    if step < args.warmup_steps:
        lr *= (step + 1) / args.warmup_steps
    return lr


def eval_times(spec: str) -> list[float] | float | None:
    """--eval-every: seconds between passes ("60"), or the training times of each ("60,120,300")."""
    if not spec:
        return None
    return [float(s) for s in spec.split(",")] if "," in spec else float(spec)


# -- the example tasks: a classifier, a tagger, an encoder-decoder -------------------------------------------------


def read_examples(path: Path, task: str, units: str) -> tuple[list[list[int]], list, list[str], list[str]]:
    """The file's input<TAB>target lines encoded as charrnn encodes them: input ids over the sorted input characters;
    targets a label id (classify), an output id a character (tag) or tokens with EOS first (seq2seq)."""
    pairs = [line.split("\t") for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    vocab = sorted({c for source, _ in pairs for c in source})
    index = {c: i for i, c in enumerate(vocab)}
    inputs = [[index[c] for c in source] for source, _ in pairs]
    if task == "classify":
        outputs = sorted({target for _, target in pairs})
        out = {o: i for i, o in enumerate(outputs)}
        return inputs, [out[target] for _, target in pairs], vocab, outputs
    pieces = [list(target) if task == "tag" or units == "chars" else target.split() for _, target in pairs]
    outputs = sorted({p for target in pieces for p in target})
    if task == "seq2seq":
        outputs = [EOS, *outputs]
    out = {o: i for i, o in enumerate(outputs)}
    return inputs, [[out[p] for p in target] for target in pieces], vocab, outputs


def random_examples(task: str, vocab_size: int, count: int) -> tuple[list[list[int]], list, list[str], list[str]]:
    """Random words of 3 to 20 characters with random targets, of the form of charrnn bench's random data."""
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, vocab_size, rng.integers(3, 21)).tolist() for _ in range(count)]
    if task == "classify":
        return inputs, rng.integers(0, 10, count).tolist(), [str(i) for i in range(vocab_size)], list("0123456789")
    if task == "tag":
        return (
            inputs,
            [rng.integers(0, 10, len(s)).tolist() for s in inputs],
            list(map(str, range(vocab_size))),
            list("0123456789"),
        )
    targets = [rng.integers(1, 11, max(1, len(s) + rng.integers(-2, 3))).tolist() for s in inputs]
    return inputs, targets, [str(i) for i in range(vocab_size)], [EOS, *"0123456789"]


EOS = "</s>"


def epoch_batches(lengths: np.ndarray, batch: int, seed: int, epoch: int, pool: int = 50) -> list[np.ndarray]:
    """charrnn's batches of an epoch: shuffle, sort each pool of `pool` batches' worth by length, cut (each batch
    longest first), shuffle."""
    rng = np.random.default_rng([seed, 2, epoch])
    shuffled = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(shuffled), batch * pool):
        members = shuffled[start : start + batch * pool]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches += [members[i : i + batch][::-1] for i in range(0, len(members), batch)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, B) ids padded with 0 at the end, and the lengths."""
    lengths = torch.tensor([len(r) for r in rows])
    ids = torch.zeros((int(lengths.max()), len(rows)), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[: len(r), b] = torch.tensor(r)
    return ids, lengths


def reverse_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(T, B) time indices that reverse each example within its length and leave its padding where it is."""
    t = torch.arange(steps)[:, None]
    return torch.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


class Encoder(nn.Module):
    """The recurrent stack over a padded batch (T, B): one module per layer and direction, the right-to-left one
    reading each example reversed within its length, as charrnn's encoder does. On this CPU that is faster than
    nn.LSTM(bidirectional=True), and exact, which a padded bidirectional module is not. With `finals` (what a
    decoder starts from) the batch is packed instead: only a packed sequence gives each example's final cell."""

    def __init__(
        self, cell: str, vocab: int, embed: int, hidden: int, layers: int, bidirectional: bool, finals: bool = False
    ) -> None:
        super().__init__()
        self.cell, self.vocab, self.hidden, self.directions = cell, vocab, hidden, 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab, embed) if embed else None
        if finals:
            self.stack = CELLS[cell](embed or vocab, hidden, num_layers=layers, bidirectional=bidirectional)
        else:
            size = [embed or vocab] + [hidden * self.directions] * (layers - 1)
            self.layers = nn.ModuleList(
                CELLS[cell](size[i], hidden) for i in range(layers) for _ in range(self.directions)
            )

    def inputs(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids) if self.embedding is not None else functional.one_hot(ids, self.vocab).float()

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, reverse = self.inputs(ids), reverse_index(lengths, ids.shape[0])[:, :, None]
        for i in range(0, len(self.layers), self.directions):
            out, _ = self.layers[i](x)
            if self.directions == 2:
                back, _ = self.layers[i + 1](x.gather(0, reverse.expand_as(x)))
                out = torch.cat([out, back.gather(0, reverse.expand_as(back))], -1)
            x = out
        return x

    def forward_finals(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Outputs (T, B, D) and [part](layers * directions, B, H) final states, through the packed stack."""
        packed = nn.utils.rnn.pack_padded_sequence(self.inputs(ids), lengths, enforce_sorted=False)
        out, state = self.stack(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out)
        return out, list(state) if isinstance(state, tuple) else [state]


class ExampleModel(nn.Module):
    """The classifier (a pooled encoder, then a linear layer to the labels) or the tagger (a linear layer at every
    position), as charrnn's ExampleNetwork."""

    def __init__(self, task: str, encoder: Encoder, outputs: int, pool: str) -> None:
        super().__init__()
        self.task, self.encoder, self.pool = task, encoder, pool
        self.head = nn.Linear(encoder.hidden * encoder.directions, outputs)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out = self.encoder(ids, lengths)
        if self.task == "tag":
            return self.head(out)
        valid = (torch.arange(ids.shape[0])[:, None] < lengths[None, :])[:, :, None]
        if self.pool == "max":
            return self.head(out.masked_fill(~valid, -math.inf).amax(0))
        if self.pool == "mean":
            return self.head((out * valid).sum(0) / lengths[:, None])
        n, rows = out.shape[-1] // self.encoder.directions, torch.arange(ids.shape[1])
        last = out[lengths - 1, rows]
        if self.encoder.directions == 2:
            last = torch.cat([last[:, :n], out[0, :, n:]], -1)
        return self.head(last)

    def loss(self, ids: torch.Tensor, lengths: torch.Tensor, targets: list) -> torch.Tensor:
        logits = self.forward(ids, lengths)
        if self.task == "classify":
            return functional.cross_entropy(logits, torch.tensor(targets))
        y, _ = padded(targets)
        valid = torch.arange(ids.shape[0])[:, None] < lengths[None, :]
        return functional.cross_entropy(logits[valid], y[valid])


class Seq2Seq(nn.Module):
    """charrnn's encoder-decoder: the encoder, a tanh bridge from a bidirectional encoder's final states, a decoder
    of LSTMCell/GRUCell layers reading EOS, y_1, ... (and, with input feeding, the previous attentional state),
    Luong's general attention h~ = tanh([c; s] W_c + b_c), and a linear layer to the target tokens."""

    def __init__(self, encoder: Encoder, targets: int, hidden: int, layers: int, attention: str, feeding: bool):
        super().__init__()
        self.encoder, self.targets, self.feeding, self.hidden = encoder, targets, feeding, hidden
        self.attention = attention
        memory = hidden * encoder.directions
        if feeding:  # the layers advance a step at a time, attention between steps
            steps = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[encoder.cell]
            size = [targets + hidden] + [hidden] * (layers - 1)
            self.decoder = nn.ModuleList(steps(size[i], hidden) for i in range(layers))
        else:  # the whole target at once, then attention for every step in batched products
            self.decoder = CELLS[encoder.cell](targets, hidden, num_layers=layers)
        self.layers, parts = layers, 2 if encoder.cell == "lstm" else 1
        self.bridge = (
            nn.ModuleList(nn.Linear(memory, hidden) for _ in range(layers * parts)) if memory != hidden else None
        )
        if attention == "general":
            self.w_a = nn.Linear(hidden, memory, bias=False)
        elif attention == "additive":
            self.w_q, self.w_k = nn.Linear(hidden, hidden, bias=False), nn.Linear(memory, hidden)
            self.v = nn.Parameter(torch.empty(hidden).uniform_(-1, 1) / math.sqrt(hidden))
        if attention != "none":
            self.w_c = nn.Linear(memory + hidden, hidden)
        self.head = nn.Linear(hidden, targets)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        """Memory (B, Ts, D), which positions are real (B, Ts), and each decoder layer's initial state."""
        out, finals = self.encoder.forward_finals(ids, lengths)
        layers, d = len(self.decoder), self.encoder.directions
        state = []
        for i in range(layers):
            parts = []
            for k, s in enumerate(finals):
                s = s.view(layers, d, *s.shape[1:])[i]
                parts.append(torch.tanh(self.bridge[i * len(finals) + k](torch.cat(list(s), -1))) if d == 2 else s[0])
            state.append(parts)
        valid = torch.arange(ids.shape[0])[None, :] < lengths[:, None]
        return out.transpose(0, 1), valid, state

    def attend(self, queries: torch.Tensor, memory: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """h~ (B, Tq, H) for decoder states (B, Tq, H) over the memory (B, Ts, D)."""
        if self.attention == "none":
            return queries
        if self.attention == "additive":
            energy = torch.tanh(self.w_q(queries)[:, :, None, :] + self.w_k(memory)[:, None, :, :])
            scores = energy @ self.v
        else:
            q = self.w_a(queries) if self.attention == "general" else queries
            scores = torch.bmm(q, memory.transpose(1, 2))
        alpha = torch.softmax(scores.masked_fill(~valid[:, None, :], -math.inf), -1)
        return torch.tanh(self.w_c(torch.cat([torch.bmm(alpha, memory), queries], -1)))

    def step(self, y: torch.Tensor, feed: torch.Tensor | None, state: list, memory, valid) -> tuple:
        """One decoder step for tokens y (B,): h~ (B, H) and the new state."""
        x = functional.one_hot(y, self.targets).float()
        if not self.feeding:
            out, new = self.decoder(x[None], self.stacked(state))
            return self.attend(out.transpose(0, 1), memory, valid)[:, 0], self.unstacked(new)
        x, new = torch.cat([x, feed], -1), []
        for layer, s in zip(self.decoder, state, strict=True):
            s = layer(x, tuple(s) if len(s) == 2 else s[0])
            s = list(s) if isinstance(s, tuple) else [s]
            new.append(s)
            x = s[0]
        return self.attend(x[:, None, :], memory, valid)[:, 0], new

    def stacked(self, state: list) -> object:
        """[layer][part] states as nn.LSTM / nn.GRU take them: (layers, B, H) each."""
        parts = [torch.stack([layer[k] for layer in state]) for k in range(len(state[0]))]
        return tuple(parts) if len(parts) == 2 else parts[0]

    def unstacked(self, state: object) -> list:
        parts = list(state) if isinstance(state, tuple) else [state]
        return [[p[i] for p in parts] for i in range(self.layers)]

    def loss(self, ids: torch.Tensor, lengths: torch.Tensor, targets: list) -> torch.Tensor:
        memory, valid, state = self.encode(ids, lengths)
        out, counted = padded([[*t, 0] for t in targets])
        decoder_in = torch.cat([torch.zeros_like(out[:1]), out[:-1]])
        if self.feeding:
            feed, attended = torch.zeros(len(targets), self.hidden), []
            for t in range(len(out)):
                feed, state = self.step(decoder_in[t], feed, state, memory, valid)
                attended.append(feed)
            logits = self.head(torch.stack(attended))
        else:
            top, _ = self.decoder(functional.one_hot(decoder_in, self.targets).float(), self.stacked(state))
            logits = self.head(self.attend(top.transpose(0, 1), memory, valid).transpose(0, 1))
        real = torch.arange(len(out))[:, None] < counted[None, :]
        return functional.cross_entropy(logits[real], out[real])

    @torch.no_grad()
    def greedy(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Each source's greedy output, up to 2 * length + 10 tokens, as charrnn decodes."""
        memory, valid, state = self.encode(ids, lengths)
        B = ids.shape[1]
        y, feed = torch.zeros(B, dtype=torch.long), torch.zeros(B, self.hidden) if self.feeding else None
        done, outputs = torch.zeros(B, dtype=torch.bool), [[] for _ in range(B)]
        for t in range(int(2 * lengths.max() + 10)):
            h, state = self.step(y, feed, state, memory, valid)
            feed = h if self.feeding else None
            y = self.head(h).argmax(-1)
            for b in torch.nonzero(~done & (y != 0) & (t < 2 * lengths + 10)).view(-1).tolist():
                outputs[b].append(int(y[b]))
            done |= (y == 0) | (t + 1 >= 2 * lengths + 10)
            if done.all():
                break
        return outputs


def task_main(args: argparse.Namespace) -> None:
    """Train a classifier, tagger or encoder-decoder for --steps steps on --corpus's examples (or random ones), as
    charrnn bench does: charrnn's batches, Adam, clipping at --clip; then time reading (or greedy decoding) of the
    first 2,048 inputs, in charrnn's batches of similar length."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.corpus:
        inputs, targets, vocab, outputs = read_examples(args.corpus, args.task, args.target_units)
    else:
        inputs, targets, vocab, outputs = random_examples(
            args.task, args.vocab_size, max(4000, args.steps * args.batch)
        )
    seq2seq = args.task == "seq2seq"
    encoder = Encoder(args.cell, len(vocab), args.embed, args.hidden, args.layers, args.bidirectional, seq2seq)
    if seq2seq:
        model = Seq2Seq(encoder, len(outputs), args.hidden, args.layers, args.attention, args.input_feeding)
    else:
        model = ExampleModel(args.task, encoder, len(outputs), args.pool)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    lengths = np.array([len(s) for s in inputs])
    batches, epoch = [], 0
    timed_seconds = 0.0
    examples = chars = 0
    for step in range(args.steps):
        if not batches:
            batches, epoch = epoch_batches(lengths, args.batch, args.seed, epoch), epoch + 1
        index = batches.pop(0)
        started = time.perf_counter()
        ids, n = padded([inputs[i] for i in index])
        loss = model.loss(ids, n, [targets[i] for i in index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        loss.item()
        if step >= args.warmup:
            timed_seconds += time.perf_counter() - started
            examples, chars = examples + len(index), chars + int(n.sum())
    print(
        f"RESULT task={args.task} cell={args.cell} steps={args.steps} timed_steps={args.steps - args.warmup} "
        f"examples/s={examples / timed_seconds:.1f} chars/s={chars / timed_seconds:.0f} "
        f"ms/step={1000 * timed_seconds / max(args.steps - args.warmup, 1):.2f}",
        flush=True,
    )
    model.eval()
    sample = inputs[:2048]
    order = np.argsort([len(s) for s in sample], kind="stable")
    size = 64 if args.task == "seq2seq" else 256

    @torch.no_grad()
    def infer(rows: list[list[int]]) -> None:
        ids, n = padded(rows)
        model.greedy(ids, n) if args.task == "seq2seq" else torch.log_softmax(model(ids, n), -1)

    infer(sample[:size])  # untimed, as charrnn sizes its buffers first
    started = time.perf_counter()
    for start in range(0, len(order), size):
        infer([sample[i] for i in order[start : start + size]])
    what = "decode" if args.task == "seq2seq" else "read"
    print(f"INFER {what} examples={len(sample)} examples/s={len(sample) / (time.perf_counter() - started):.1f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["lm", "classify", "tag", "seq2seq"], default="lm")
    parser.add_argument("--corpus", type=Path, help="the text (lm), or a file of input<TAB>target examples")
    parser.add_argument("--cell", choices=list(CELLS), default="lstm")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embed", type=int, default=64, help="embedding columns; 0 for one-hot input")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--bidirectional", action="store_true", help="classify, tag, seq2seq: read both ways")
    parser.add_argument("--pool", choices=["last", "mean", "max"], default="last", help="classify")
    parser.add_argument("--attention", choices=["none", "dot", "general", "additive"], default="general")
    parser.add_argument("--input-feeding", action="store_true", help="seq2seq: feed h~ back into the decoder")
    parser.add_argument("--target-units", choices=["chars", "words"], default="chars", help="seq2seq targets")
    parser.add_argument("--vocab-size", type=int, default=65, help="symbols of random examples (no --corpus)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--steps", type=int, default=0, help="training steps (0: no limit)")
    parser.add_argument("--time-budget", type=float, default=0.0, help="training seconds (0: no limit)")
    parser.add_argument("--val-frac", type=float, default=0.1)
    parser.add_argument("--eval-every", default="", help="seconds between validation passes, or a list of times")
    parser.add_argument("--eval-end", action="store_true", help="a validation pass at the end")
    parser.add_argument("--eval-chunk", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--schedule", choices=["constant", "cosine", "wsd"], default="constant")
    parser.add_argument("--min-lr", type=float, default=0.0)
    parser.add_argument("--decay-frac", type=float, default=0.2)
    parser.add_argument("--warmup-steps", type=int, default=0, help="learning-rate warm-up")
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before the speed is measured")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--sample-bench", type=int, default=0, help="then time drawing this many characters")
    args = parser.parse_args()
    if not args.steps and not args.time_budget:
        parser.error("give --steps or --time-budget")
    if args.task == "lm" and args.corpus is None:
        parser.error("a language model needs --corpus")
    if args.task != "lm" and not args.steps:
        parser.error(f"--task {args.task} runs --steps steps")
    return args


def main() -> None:
    args = parse_args()
    if args.task != "lm":
        task_main(args)
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    text = args.corpus.read_text(encoding="utf-8-sig")
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = len(ids) - int(len(ids) * args.val_frac)
    train, val = ids[:split], ids[split:]
    per_stream = (len(train) - 1) // args.batch
    inputs = train[: per_stream * args.batch].view(args.batch, per_stream)
    targets = train[1 : per_stream * args.batch + 1].view(args.batch, per_stream)
    chunks = per_stream // args.seq

    model = CharModel(args.cell, len(chars), args.embed, args.hidden, args.layers, args.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.corpus.name}: {len(train):,} training "
        f"and {len(val):,} validation characters, vocabulary {len(chars)}; {args.cell} {args.layers}x{args.hidden}, "
        f"embed {args.embed}, {sum(p.numel() for p in model.parameters()):,} parameters",
        flush=True,
    )

    schedule = eval_times(args.eval_every)
    next_eval = schedule.pop(0) if isinstance(schedule, list) and schedule else schedule
    step = chunk = epoch = timed_steps = 0
    seconds = timed_seconds = 0.0
    state, evaluated_at = None, -1

    def validate(tag: str) -> None:
        nonlocal evaluated_at
        loss = evaluate(model, val, args.eval_chunk)
        evaluated_at = step
        print(
            f"EVAL {tag} train_time={seconds:.1f}s step={step} epoch={epoch + chunk / chunks:.2f} "
            f"val_loss={loss:.4f} nats/char ({loss / math.log(2):.4f} bits/char)",
            flush=True,
        )

    while not (args.steps and step >= args.steps) and not (args.time_budget and seconds >= args.time_budget):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step, seconds)
        if chunk == chunks:
            chunk, epoch, state = 0, epoch + 1, None
        columns = slice(chunk * args.seq, (chunk + 1) * args.seq)
        logits, state = model(inputs[:, columns], detach_state(state))
        loss = functional.cross_entropy(logits.reshape(-1, len(chars)), targets[:, columns].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        loss.item()
        elapsed = time.perf_counter() - started
        seconds, step, chunk = seconds + elapsed, step + 1, chunk + 1
        if step > args.warmup:
            timed_seconds, timed_steps = timed_seconds + elapsed, timed_steps + 1
        if next_eval is not None and seconds >= next_eval:
            validate(f"@{next_eval:g}s")
            if isinstance(schedule, list):
                next_eval = schedule.pop(0) if schedule else None
            else:
                next_eval += schedule

    speed = args.batch * args.seq * timed_steps / timed_seconds if timed_seconds else float("nan")
    print(
        f"RESULT cell={args.cell} steps={step} timed_steps={timed_steps} chars/s={speed:.0f} "
        f"ms/step={1000 * timed_seconds / max(timed_steps, 1):.2f}",
        flush=True,
    )
    if args.eval_end and evaluated_at != step:
        validate("end")
    if args.sample_bench:
        print(f"SAMPLE chars={args.sample_bench} chars/s={sampling_speed(model, args.sample_bench, args.seed):.0f}")


if __name__ == "__main__":
    main()
