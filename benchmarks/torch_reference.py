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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--cell", choices=list(CELLS), default="lstm")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embed", type=int, default=64, help="embedding columns; 0 for one-hot input")
    parser.add_argument("--dropout", type=float, default=0.0)
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
    return args


def main() -> None:
    args = parse_args()
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
