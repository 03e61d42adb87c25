"""`--size auto`: pick the model for a corpus and a time budget from measurements, and say why.

The rule comes from side-by-side runs (benchmarks/sweep.md, docs/quality.md): the best model for a budget was
the largest of the menu that still reads at least CHARS_PER_PARAM characters per parameter within it, with at
most PARAMS_PER_CHAR parameters per training character (more memorises a small corpus: data/pond.txt, 1 minute).
The three largest have a 64-wide embedding and the recipe each was measured best with. GRU 2x384 (Adam at 2e-3; at the
default 4e-3 the embedding diverged) drops units only when the budget reads the training text 8 times or more:
War and Peace, read 2 to 6 times, trains best without. LSTM 2x384 with an embedding (PyTorch's best recipe on tiny
shakespeare where 10 minutes read it 4 to 6 times, and charrnn's there) is for a text read 3 times or more: War and
Peace, read under 3 times, is GRU 2x384's. The wider GRU 2x512 (its dropout 0.25, cosine at 3e-3) is for a text
read 6 times or more: it beat GRU 2x384 on tiny shakespeare read 6.5 and 10 times (PyTorch's LSTM recipe, reading
it 13 times, overfitted there), and lost to LSTM 2x384 where it read it 5.2 times. Speeds are measured here, on
this machine, before training, as whole training steps, over the time the budget leaves for training.
"""

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.nn.optim import clip_gradients, make_optimizer
from charrnn.nn.stack import RecurrentSpec
from charrnn.training.config import format_duration
from charrnn.training.trainer import EVAL_MARGIN

CHARS_PER_PARAM = 1.5
PARAMS_PER_CHAR = 3.0
PROBE_SHARE = 0.05  # of the budget, for timing the menu's models (smallest first) before the run


@dataclass(frozen=True)
class Choice:
    """One model of the menu: its settings, the training settings it was measured best with (applied unless the
    user set them), and when it is worth its size."""

    name: str
    model: dict[str, Any]
    recipe: dict[str, Any] = field(default_factory=dict)
    min_epochs: float = 0.0  # only for a corpus the budget reads this many times or more
    dropout_epochs: float = 0.0  # its dropout only when the budget reads the training text this many times


MENU: list[Choice] = [  # smallest first
    Choice("lstm 1×128", {"cell": "lstm", "layers": 1, "hidden": 128, "embed": 0, "dropout": 0.0, "forget_bias": 0.0}),
    Choice("lstm 2×256", {"cell": "lstm", "layers": 2, "hidden": 256, "embed": 0, "dropout": 0.0, "forget_bias": 0.0}),
    Choice(
        "gru 2×384",
        {"cell": "gru", "layers": 2, "hidden": 384, "embed": 64, "dropout": 0.2},
        {"lr": 2e-3},
        dropout_epochs=8.0,
    ),
    Choice(
        "lstm 2×384",
        {"cell": "lstm", "layers": 2, "hidden": 384, "embed": 64, "dropout": 0.2, "forget_bias": 0.0},
        {"lr": 2e-3, "lr_schedule": "wsd"},
        min_epochs=3.0,
    ),
    Choice(
        "gru 2×512",
        {"cell": "gru", "layers": 2, "hidden": 512, "embed": 64, "dropout": 0.25},
        {"lr": 3e-3, "lr_schedule": "cosine", "warmup_steps": 100, "min_lr": 1e-4, "reset_every": 0},
        min_epochs=6.0,
    ),
]
MODEL_KEYS = tuple(dict.fromkeys(key for choice in MENU for key in choice.model))  # what --size auto sets itself


def training_speed(model: LanguageModelNetwork, batch_size: int, seq_len: int, steps: int = 3) -> float:
    """Characters per second of whole training steps, as the run takes them (forward and backward with dropout,
    the gradient clipped, an Adam update), after one untimed step."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, model.vocab_size, (seq_len, batch_size))
    y = rng.integers(0, model.vocab_size, (seq_len, batch_size))
    state = model.initial_state(batch_size)
    optimizer = make_optimizer("adam", model.flat_params, 1e-9, 0.9, 0.0)

    def step() -> None:
        model.loss_and_grads(x, y, state, 0.2, rng)
        clip_gradients(model.flat_grads, 5.0, 0.0)
        optimizer.step(model.flat_grads)

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size * seq_len / (time.perf_counter() - started)


def _too_large(choice: Choice, params: int, chars: float, train_chars: int) -> str:
    """Why the rule passes over this model for a budget that reads `chars` characters ("" if it does not)."""
    if params > PARAMS_PER_CHAR * train_chars:
        return f"{params / train_chars:.1f} parameters per training character"
    if chars < CHARS_PER_PARAM * params:
        return f"{chars / params:.1f} characters per parameter"
    if chars < choice.min_epochs * train_chars:
        return f"read the training text {chars / train_chars:.1f} times, under {choice.min_epochs:g}"
    return ""


def pick_size(
    vocab_size: int,
    train_chars: int,
    max_time: float,
    batch_size: int,
    seq_len: int,
    given: Collection[str] = (),
    max_steps: int = 0,
    val_chars: int = 0,
    eval_every: int = 0,
) -> tuple[dict[str, Any], str]:
    """The settings of the model to train and its recipe, and two lines that say what was picked and why.

    `max_time`: the seconds left of the budget; the time the measurements take and the validation passes (of
    `val_chars`, every `eval_every` steps and at the end) come off it, so a model is judged by what its run reads.
    `given`: the config keys the user set (flags or a config file), which a menu entry's recipe leaves alone.
    `max_steps`: the run's step limit, if any; a recipe's warm-up that would fill it is cut to a tenth of it.
    """
    started = time.perf_counter()
    speeds = []
    for choice in MENU:
        if speeds and time.perf_counter() - started > PROBE_SHARE * max_time:
            break  # a short budget is not spent on timing models too large for it
        m = choice.model
        spec = RecurrentSpec(m["cell"], m["hidden"], m["layers"], embed=m["embed"])
        model = LanguageModelNetwork(vocab_size, spec)
        speeds.append((choice, model.num_params, training_speed(model, batch_size, seq_len)))
    seconds = max(0.0, max_time - (time.perf_counter() - started))
    # A validation pass costs about EVAL_MARGIN * val_chars training characters' time; one at the end and one every
    # eval_every steps: chars = speed * seconds - (1 + chars / (batch_size * seq_len * eval_every)) * that.
    validation = EVAL_MARGIN * val_chars
    per_char = validation / (batch_size * seq_len * eval_every) if eval_every else 0.0
    measured = [(c, p, s, max(0.0, (s * seconds - validation) / (1 + per_char))) for c, p, s in speeds]
    worth = [(c, p, s, n) for c, p, s, n in measured if not _too_large(c, p, n, train_chars)]
    chosen = worth[-1] if worth else measured[0]  # the menu is smallest first
    choice, params, speed, chars = chosen
    settings = dict(choice.model)
    epochs = chars / train_chars
    why = [
        f"{speed:,.0f} chars/s measured here: in {format_duration(seconds)} it reads the training text {epochs:.1f} "
        f"times, {chars / params:.1f} characters per parameter"
    ]
    larger = measured[measured.index(chosen) + 1 :]
    if larger:
        other, other_params, _, other_chars = larger[0]
        why.append(f"{other.name} would have {_too_large(other, other_params, other_chars, train_chars)}")
    elif len(speeds) < len(MENU):
        why.append(f"{MENU[len(speeds)].name} and larger were not timed, in a budget this short")
    if settings["dropout"] and epochs < choice.dropout_epochs:
        settings["dropout"] = 0.0
        why.append(f"no dropout: it reads the training text under {choice.dropout_epochs:g} times")
    recipe = {key: value for key, value in choice.recipe.items() if key not in given}
    if max_steps and recipe.get("warmup_steps", 0) >= max_steps:
        recipe["warmup_steps"] = max_steps // 10
        why.append(f"warm-up cut to a tenth of --max-steps {max_steps}, the recipe's would fill it")
    embedding = f" with a {settings['embed']}-wide embedding" if settings["embed"] else ""
    picked = f"--size auto picked {choice.name}{embedding} ({params:,} parameters), dropout {settings['dropout']:g}"
    if recipe:
        picked += "; its recipe: " + ", ".join(
            f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}" for key, value in recipe.items()
        )
    return {**settings, **recipe}, f"{picked}\n{'; '.join(why)}."
