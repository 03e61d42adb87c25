"""Does charrnn compute and learn exactly what PyTorch does? Train both from the same initial weights on the same
chunks, step by step, and compare the losses.

    .venv-torch/bin/python benchmarks/parity.py --cell gru --layers 2 --hidden 384 --steps 300

The corpus defaults to the tinyshakespeare data set (`charrnn data get tinyshakespeare`).

It runs in the PyTorch environment with charrnn installed there too (`.venv-torch/bin/pip install -e .`), and uses
the reference model of benchmarks/torch_reference.py (one-hot input, Adam, clip_grad_norm_). The weights of the
PyTorch model are copied into charrnn's layout (PyTorch's LSTM gates i, f, g, o become charrnn's o, i, f, g; its two
bias vectors become one where they are redundant, and the redundant half is frozen on the PyTorch side so that both
optimise the same parameters). Then:

1. one chunk: the loss and every gradient of both, and their largest difference;
2. `--steps` updates of each with the same learning rate, clipping and chunks, dropout off and no state resets: the
   training loss of both every `--every` steps and the largest difference, then each one's validation loss.

Float32 rounding makes the two runs drift apart slowly (a training run is chaotic); a bug in a gradient, the
optimizer or the clipping shows up as a gap in the first few steps.
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import torch_reference  # noqa: E402

from charrnn.data.text import load_corpus  # noqa: E402
from charrnn.nn.language_model import evaluate  # noqa: E402
from charrnn.training.config import Config  # noqa: E402
from charrnn.training.trainer import Trainer  # noqa: E402

GATE_ORDER = {"lstm": [3, 0, 1, 2], "gru": [0, 1, 2], "rnn": [0]}  # charrnn's gate k is PyTorch's gate ORDER[k]


def redundant_bias(cell: str, hidden: int) -> slice:
    """The part of PyTorch's bias_hh that only adds to bias_ih (all of it, except the GRU's b_hn)."""
    return slice(0, 2 * hidden) if cell == "gru" else slice(None)


def reorder(w: torch.Tensor, cell: str) -> np.ndarray:
    """PyTorch's (G*H, ...) gate blocks in charrnn's order."""
    blocks = w.detach().numpy().reshape(len(GATE_ORDER[cell]), -1, *w.shape[1:])
    return np.concatenate([blocks[k] for k in GATE_ORDER[cell]])


def fold_biases(net: torch_reference.CharModel, cell: str, hidden: int, freeze: bool = True) -> None:
    """Move the redundant part of each bias_hh into bias_ih and keep it at zero (its gradient is zeroed), unless
    not `freeze`: then it starts at zero but learns, as in PyTorch, and the two move the sum twice as fast."""
    part = redundant_bias(cell, hidden)
    with torch.no_grad():
        for layer in range(net.rnn.num_layers):
            b_ih, b_hh = getattr(net.rnn, f"bias_ih_l{layer}"), getattr(net.rnn, f"bias_hh_l{layer}")
            b_ih[part] += b_hh[part]
            b_hh[part] = 0.0
            if freeze:
                b_hh.register_hook(lambda g: g.index_fill(0, torch.arange(g.shape[0])[part], 0.0))


def charrnn_params(net: torch_reference.CharModel, cell: str, hidden: int, grad: bool = False) -> dict[str, np.ndarray]:
    """The PyTorch model's weights (or, with grad=True, their gradients), named and shaped as charrnn's parameters.

    Where charrnn has one bias for PyTorch's two, it is their sum (and so is its gradient).
    """

    def get(name: str) -> torch.Tensor:
        module, attr = (net.head, name[5:]) if name.startswith("head.") else (net.rnn, name)
        tensor = getattr(module, attr)
        return tensor.grad if grad else tensor

    params = {}
    for layer in range(net.rnn.num_layers):
        b_ih, b_hh = get(f"bias_ih_l{layer}"), get(f"bias_hh_l{layer}")
        params[f"l{layer}.W_x"] = reorder(get(f"weight_ih_l{layer}"), cell).T
        params[f"l{layer}.W_h"] = reorder(get(f"weight_hh_l{layer}"), cell).T
        params[f"l{layer}.b"] = reorder(b_ih + b_hh, cell)
        if cell == "gru":
            params[f"l{layer}.b"][2 * hidden :] = b_ih.detach().numpy()[2 * hidden :]
            params[f"l{layer}.b_hn"] = b_hh.detach().numpy()[2 * hidden :]
    params["W_y"] = get("head.weight").detach().numpy().T
    params["b_y"] = get("head.bias").detach().numpy()
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="data:tinyshakespeare", help="a text file, or a data set (data:NAME)")
    parser.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="gru")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--free-biases",
        action="store_true",
        help="leave PyTorch's redundant bias_hh free (its default), to measure what it changes",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    config = Config(
        corpus=[str(args.corpus)],
        cell=args.cell,
        layers=args.layers,
        hidden=args.hidden,
        batch_size=args.batch,
        seq_len=args.seq,
        lr=args.lr,
        clip=args.clip,
        dropout=0.0,
        reset_every=0,
        lr_schedule="constant",
        seed=args.seed,
    )
    corpus = load_corpus(config.corpus, val_frac=config.val_frac)
    trainer = Trainer(config, corpus)  # steps only: it never saves
    net = torch_reference.CharModel(args.cell, len(corpus.vocab), 0, args.hidden, args.layers, 0.0)
    fold_biases(net, args.cell, args.hidden, freeze=not args.free_biases)
    for name, value in charrnn_params(net, args.cell, args.hidden).items():
        trainer.network.params[name][...] = value
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    inputs = torch.from_numpy(trainer.task.batches.inputs.astype(np.int64))
    targets = torch.from_numpy(trainer.task.batches.targets.astype(np.int64))
    vocab_size = len(corpus.vocab)
    print(
        f"{args.cell} {args.layers}x{args.hidden}, batch {args.batch}x{args.seq}, lr {args.lr}, "
        f"{trainer.network.num_params:,} parameters, torch {torch.__version__}"
    )

    def torch_step(k: int, state):
        cols = slice(k * args.seq, (k + 1) * args.seq)
        logits, state = net(inputs[:, cols], torch_reference.detach_state(state))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_size), targets[:, cols].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip)
        return loss.item(), state

    # 1. One chunk, before any update: the same loss and gradients (compared before clipping).
    x, y = trainer.task.batches.chunk(0)
    ours, _ = trainer.network.loss_and_grads(x, y, trainer.network.initial_state(args.batch))
    logits, _ = net(inputs[:, : args.seq], None)
    theirs = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_size), targets[:, : args.seq].reshape(-1))
    opt.zero_grad(set_to_none=True)
    theirs.backward()
    worst = max(
        (float(np.abs(trainer.network.grads[name] - g).max() / (np.abs(g).max() + 1e-30)), name)
        for name, g in charrnn_params(net, args.cell, args.hidden, grad=True).items()
    )
    print(
        f"one chunk: loss {ours:.6f} (charrnn) vs {theirs.item():.6f} (torch); largest gradient difference "
        f"{worst[0]:.1e} of the largest entry, in {worst[1]}"
    )

    # 2. The same updates on both sides.
    print("\n| step | charrnn loss | torch loss | difference |\n|---:|---:|---:|---:|")
    state, largest = None, 0.0
    for step in range(args.steps):
        ours = trainer.train_step()
        theirs, state = torch_step(step % trainer.task.steps_per_epoch, state)
        opt.step()
        largest = max(largest, abs(ours - theirs))
        if (step + 1) % args.every == 0 or step == 0:
            print(f"| {step + 1} | {ours:.4f} | {theirs:.4f} | {ours - theirs:+.4f} |")
    val_ours = evaluate(trainer.network, corpus.val, streams=1)
    val_theirs = torch_reference.evaluate(net, torch.from_numpy(corpus.val.astype(np.int64)), 1000)
    print(f"\nlargest training-loss difference over {args.steps} steps: {largest:.4f} nats/char")
    print(
        f"validation after {args.steps} steps: charrnn {val_ours:.4f}, torch {val_theirs:.4f} "
        f"({val_ours - val_theirs:+.4f} nats/char; {math.log2(math.e) * (val_ours - val_theirs):+.4f} bits)"
    )


if __name__ == "__main__":
    main()
