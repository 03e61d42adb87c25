"""`--size auto`: pick the model for a corpus and a time budget from measurements, and say why.

The menu and the two rules come from benchmarks/sweep.md (tiny shakespeare, 5 and 10 minutes; data/pond.txt,
1 minute): the best model for a budget was the largest that still reads at least CHARS_PER_PARAM characters
per parameter within it (GRU 2x384 read 3.3 per parameter in 5 minutes and lost to LSTM 2x256 at 9.5; in 10
minutes it read 6.5 and reached 1.453), and no model has more than PARAMS_PER_CHAR parameters per training
character (more memorises a small corpus). Speeds are measured here, on this machine, before training.

The largest model's recipe comes from docs/quality.md: a 64-wide embedding (it learns faster per step, as
PyTorch's does) with Adam at 2e-3 (at the default 4e-3 it diverged slowly on both corpora), and dropout only
when the budget reads the training text DROPOUT_EPOCHS times or more (a model read 10 times over tiny
shakespeare overfits without it, benchmarks/sweep.md; War and Peace, read 4 to 6 times, trains best without it).
"""

import time
from typing import Any

import numpy as np

from charrnn.config import Config
from charrnn.model import CharModel

CHARS_PER_PARAM = 6.0
PARAMS_PER_CHAR = 2.0
DROPOUT_EPOCHS = 8.0
MENU: list[tuple[str, dict[str, Any]]] = [  # smallest first
    ("lstm 1×128", {"cell": "lstm", "layers": 1, "hidden": 128, "forget_bias": 0.0, "embed": 0, "dropout": 0.0}),
    ("lstm 2×256", {"cell": "lstm", "layers": 2, "hidden": 256, "forget_bias": 0.0, "embed": 0, "dropout": 0.0}),
    ("gru 2×384", {"cell": "gru", "layers": 2, "hidden": 384, "embed": 64, "dropout": 0.2, "lr": 2e-3}),
]


def training_speed(model: CharModel, batch_size: int, seq_len: int, steps: int = 3) -> float:
    """Characters per second of forward and backward passes (the bulk of a training step), after one warm-up."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, model.vocab_size, (seq_len, batch_size))
    y = rng.integers(0, model.vocab_size, (seq_len, batch_size))
    state = model.initial_state(batch_size)
    model.loss_and_grads(x, y, state)
    started = time.perf_counter()
    for _ in range(steps):
        model.loss_and_grads(x, y, state)
    return steps * batch_size * seq_len / (time.perf_counter() - started)


def pick_size(
    vocab_size: int, train_chars: int, max_time: float, batch_size: int, seq_len: int, lr_given: bool = False
) -> tuple[dict[str, Any], str]:
    """The settings of the model to train, and one sentence that says why it was picked.

    `lr_given`: the user chose the learning rate (a flag or a config key), so a menu entry's own is not applied.
    """
    measured = []
    for name, settings in MENU:
        model = CharModel(vocab_size, settings["hidden"], settings["layers"], settings["cell"], embed=settings["embed"])
        speed = training_speed(model, batch_size, seq_len)
        measured.append((name, settings, model.num_params, speed, speed * max_time))
    fits = [m for m in measured if m[2] <= PARAMS_PER_CHAR * train_chars] or measured[:1]
    chosen = next((m for m in reversed(fits) if m[4] >= CHARS_PER_PARAM * m[2]), fits[0])
    name, settings, params, speed, chars = chosen
    settings = dict(settings)
    embedding = f" with a {settings['embed']}-wide embedding" if settings["embed"] else ""
    why = (
        f"--size auto picked {name}{embedding} ({params:,} parameters): at {speed:,.0f} chars/s it reads "
        f"{chars / 1e6:.1f}M characters in {max_time:.0f} s, {chars / params:.1f} per parameter, and it has "
        f"{params / train_chars:.2f} parameters per training character"
    )
    larger = measured[measured.index(chosen) + 1 :]
    if larger:
        other, _, other_params, _, other_chars = larger[0]
        reason = (
            f"{other_chars / other_params:.1f} characters per parameter"
            if other_params <= PARAMS_PER_CHAR * train_chars
            else f"{other_params / train_chars:.1f} parameters per training character"
        )
        why += f"; {other} would have {reason}"
    why += (
        f" (the rule, from benchmarks/sweep.md: the largest model that reads at least {CHARS_PER_PARAM:g} characters"
        f" per parameter, with at most {PARAMS_PER_CHAR:g} parameters per training character)"
    )
    epochs = chars / train_chars
    if settings["dropout"] and epochs < DROPOUT_EPOCHS:
        settings["dropout"] = 0.0
        why += f"; no dropout: it reads the training text {epochs:.1f} times, under {DROPOUT_EPOCHS:g}"
    elif settings["dropout"]:
        why += f"; dropout {settings['dropout']:g}: it reads the training text {epochs:.1f} times"
    if "lr" in settings and lr_given:
        del settings["lr"]
    elif "lr" in settings:
        why += f"; learning rate {settings['lr']:g}, as the embedding diverged at the default {Config.lr:g}"
    return settings, why + "."
