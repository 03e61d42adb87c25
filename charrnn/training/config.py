"""The run's settings: defaults <- YAML file <- command-line flags, each value checked once, here.

Every key is a field of `Config`; its metadata holds the help text and the allowed values, so the
YAML loader, the CLI's help and docs/configuration.md all read the same definition.
"""

import contextlib
import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from charrnn.errors import CharRNNError
from charrnn.tasks import registry


def _key(default: Any, help: str, **rule: Any) -> Any:
    """A config field and its facts: `rule` may hold ge/gt/le/lt bounds or `choices`, and
    - model=True: the key defines the trained network itself (what it computes, the shapes of its parameters), so
      --init-from takes it from the checkpoint;
    - resume=True: a resumed run may change it (when and how long it goes on, not what it learns);
    - sweep=True: a sweep may vary it between trials (how the model is made and trained);
    - path=True: its value is a file or folder; shown: how help shows its default."""
    factory = {"default_factory": lambda: list(default)} if isinstance(default, list) else {"default": default}
    return field(**factory, metadata={"help": help, **rule})


@dataclass
class Config:
    """The settings of a training run. Every value is checked when the config is made (a bad one raises
    CharRNNError); defaults <- a YAML file <- overrides, as on the command line:

        >>> config = Config.from_yaml("configs/tiny.yaml", hidden=64)
        >>> config.replace(dropout=0.2).dropout
        0.2
    """

    corpus: list[str] = _key(
        [],
        "text file(s) to train on, read in order and joined (other tasks: a file of examples); data:NAME[/FILE] for "
        "a data set",
    )
    task: str = _key(
        "lm",
        "what to learn: lm (next character), classify (a label per line: input<TAB>label), tag (an output "
        "character per input character: input<TAB>output), seq2seq (an output sequence of its own length: "
        "source<TAB>target)",
        choices=registry.names,
        model=True,
    )
    val_file: str = _key(
        "",
        "other tasks: a file of validation examples (default: hold out --val-frac of the file)",
        path=True,
        shown="none",
    )
    max_len: int = _key(
        0,
        "classify, tag: cut inputs longer than this (seq2seq: refuse sources or targets longer than this)",
        ge=0,
        sweep=True,
    )
    bidirectional: bool = _key(
        False, "other tasks: a right-to-left stack beside the left-to-right one", model=True, sweep=True
    )
    pool: str = _key(
        "last",
        "classify: what the label is read from: the final states, or the mean or maximum over the input",
        choices=("last", "mean", "max"),
        model=True,
        sweep=True,
    )
    target_units: str = _key(
        "chars",
        "seq2seq: a target is a string of characters, or of space-separated words (e.g. phonemes)",
        choices=("chars", "words"),
        model=True,
    )
    attention: str = _key(
        "general",
        "seq2seq: how the decoder scores the encoder's outputs at every step",
        choices=("none", "dot", "general", "additive"),
        model=True,
        sweep=True,
    )
    input_feeding: bool = _key(
        False,
        "seq2seq: feed each step's attentional state into the decoder's next step",
        model=True,
        sweep=True,
    )
    encoding: str = _key("utf-8", "text encoding of the corpus files (a UTF-8 byte-order mark is dropped)")
    val_frac: float = _key(
        0.1, "fraction held out for validation: the corpus's end (lm), or examples drawn with --seed", ge=0.0, lt=1.0
    )
    newline: str = _key(
        "keep",
        "line endings: keep them as they are, or turn CRLF and CR into LF",
        choices=("keep", "lf"),
    )
    max_vocab: int = _key(1000, "refuse a corpus with more distinct characters (a sign of the wrong --encoding)", ge=1)
    run_dir: str = _key("", "folder for checkpoints and the effective config", path=True, shown="runs/<corpus name>")
    size: str = _key(
        "manual",
        "auto: with --max-time, pick cell, layers, hidden, embed, dropout and forget_bias for the corpus and the "
        "budget, and the training keys measured best with that model (lr, schedule) that you do not give",
        choices=("manual", "auto"),
    )
    cell: str = _key("lstm", "recurrent cell", choices=("rnn", "lstm", "gru"), model=True, sweep=True)
    layers: int = _key(2, "number of stacked recurrent layers", ge=1, model=True, sweep=True)
    hidden: int = _key(256, "hidden units per layer", ge=1, model=True, sweep=True)
    dtype: str = _key(
        "float32", "floating-point type of weights and activations", choices=("float32", "float64"), model=True
    )
    batch_size: int = _key(32, "parallel streams per step (B)", ge=1, sweep=True)
    seq_len: int = _key(64, "time steps per chunk of truncated backpropagation (T)", ge=1, sweep=True)
    reset_every: int = _key(
        16,
        "each stream restarts from the zero state once every N chunks, staggered across streams, so the model also "
        "learns to start from the state that sampling and validation start from (0: only at epoch starts)",
        ge=0,
        sweep=True,
    )
    forget_bias: float = _key(0.0, "initial bias of the LSTM forget gate", sweep=True)
    embed: int = _key(
        0,
        "width of a learned character embedding before the first layer (as torch-rnn's -wordvec_size; 0: the first "
        "layer reads one-hot characters)",
        ge=0,
        model=True,
        sweep=True,
    )
    dropout: float = _key(
        0.1, "dropout between stacked layers, in training only (as PyTorch's)", ge=0.0, lt=1.0, sweep=True
    )
    output_dropout: bool = _key(
        False,
        "also drop the top layer's output before the output layer (as char-rnn; measured worse here)",
        sweep=True,
    )
    input_dropout: float = _key(
        0.0,
        "share of input characters blanked in training: each reads no input weights, only the bias (the character "
        "form of word dropout; for the sequence-to-sequence task, of the source)",
        ge=0.0,
        lt=1.0,
        sweep=True,
    )
    label_smoothing: float = _key(
        0.0,
        "classify, tag, seq2seq: train towards (1 - eps) on the right answer and eps spread over all of them, "
        "not 1 on the right one (the training loss includes this term; validation scores the plain loss)",
        ge=0.0,
        lt=1.0,
        sweep=True,
    )
    ema: float = _key(
        0.0,
        "keep an exponential moving average of the weights with this decay per step (e.g. 0.999; 0: off); "
        "validation, best.npz and every command that uses a checkpoint then use the average",
        ge=0.0,
        lt=1.0,
        sweep=True,
    )
    optimizer: str = _key("adam", "update rule", choices=("adam", "adamw", "sgd", "rmsprop", "adagrad"), sweep=True)
    lr: float = _key(4e-3, "learning rate (the peak, with a schedule)", gt=0.0, sweep=True)
    momentum: float = _key(0.9, "momentum of sgd", ge=0.0, lt=1.0, sweep=True)
    weight_decay: float = _key(0.01, "decoupled weight decay of adamw", ge=0.0, sweep=True)
    lr_schedule: str = _key(
        "wsd",
        "learning-rate schedule (cosine: down to --min-lr over the run; wsd: constant, then down to --min-lr over "
        "the last --decay-frac of the run)",
        choices=("constant", "step", "cosine", "wsd"),
        sweep=True,
    )
    lr_decay: float = _key(
        0.5, "step schedule: factor applied every --lr-decay-every epochs", gt=0.0, le=1.0, sweep=True
    )
    lr_decay_every: float = _key(1.0, "step schedule: epochs between two decays", gt=0.0, sweep=True)
    min_lr: float = _key(0.0, "cosine and wsd schedules: the learning rate they end at", ge=0.0, sweep=True)
    decay_frac: float = _key(
        0.2, "wsd schedule: the fraction of the run over which it decays", gt=0.0, le=1.0, sweep=True
    )
    warmup_steps: int = _key(0, "steps of linear warm-up from 0 to --lr, before any schedule", ge=0, sweep=True)
    clip: float = _key(5.0, "clip the global gradient norm to this (0 disables)", ge=0.0, sweep=True)
    clip_value: float = _key(0.0, "clip each gradient element to [-v, v] (0 disables)", ge=0.0, sweep=True)
    max_steps: int = _key(
        0,
        "stop after this many steps in all (0: no step limit); with --epochs or --max-time, the first reached stops",
        ge=0,
        resume=True,
    )
    epochs: float = _key(
        0.0,
        "stop after this many passes over the training data in all (0: no epoch limit); a run given no "
        "--max-steps, --epochs or --max-time stops after 10",
        ge=0.0,
        resume=True,
    )
    max_time: float = _key(
        0.0,
        "the run's wall-clock budget in all, its last validation and save included, e.g. 90s, 10m, 1h30m (0: no limit)",
        ge=0.0,
        duration=True,
        resume=True,
    )
    seed: int = _key(1234, "random seed for initialisation and dropout", ge=0, sweep=True)
    eval_every: int = _key(500, "steps between validation passes (0: only at the end)", ge=0, resume=True)
    save_every: int = _key(500, "steps between checkpoints (0: only at the end)", ge=0, resume=True)
    keep: int = _key(0, "also keep the N most recent numbered checkpoints, step-NNNNNNN.npz", ge=0, resume=True)
    patience: int = _key(0, "stop early after N validation passes without a new best (0: never)", ge=0, resume=True)
    log_every: int = _key(10, "steps between lines of metrics.jsonl", ge=1, resume=True)
    sample_every: int = _key(0, "steps between short samples shown while training (0: never)", ge=0, resume=True)
    guard_skips: int = _key(3, "divergence guard: non-finite steps in a row before rolling back", ge=1)
    guard_lr_factor: float = _key(0.5, "divergence guard: learning-rate factor at each rollback", gt=0.0, lt=1.0)
    guard_rollbacks: int = _key(3, "divergence guard: rollbacks before giving up", ge=0)

    def __post_init__(self) -> None:
        for key in FIELDS:
            try:
                setattr(self, key, check_value(key, getattr(self, key)))
            except ValueError as e:
                raise CharRNNError(f"config key '{key}' {e}.") from None
        check_consistency(self)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "Config":
        """The config a YAML file describes, with `overrides` (config keys) on top, as `--config FILE --flag ...`."""
        return build_config(Path(path), overrides)

    def replace(self, **changes: Any) -> "Config":
        """A copy with some keys changed, checked as command-line flags are."""
        return build_config(None, {**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Every key and its value (what a checkpoint stores)."""
        return dataclasses.asdict(self)

    @property
    def validates(self) -> bool:
        """Whether the run has validation data: a held-out share of the corpus, or a validation file."""
        return self.val_frac > 0 or bool(self.val_file)

    def to_yaml(self) -> str:
        """The config as YAML, as the run directory's config.yaml holds it (`--config` reads it back)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
NETWORK_KEYS = tuple(key for key, f in FIELDS.items() if f.metadata.get("model"))
"""The keys that define a trained network (marked model=True): --init-from takes them from its checkpoint."""
RESUMABLE = tuple(key for key, f in FIELDS.items() if f.metadata.get("resume"))
"""The keys a resumed run may change (marked resume=True)."""
SWEEPABLE = tuple(key for key, f in FIELDS.items() if f.metadata.get("sweep"))
"""The keys a sweep may vary (marked sweep=True)."""


def choices(key: str) -> tuple[str, ...] | None:
    """The values a key allows, if it names them (the tasks: those registered)."""
    allowed = FIELDS[key].metadata.get("choices")
    return allowed() if callable(allowed) else allowed


def tasks_using(key: str) -> tuple[str, ...]:
    """The tasks that use a config key: those that list it in their `keys`, or every task if none does. A task
    declares the keys that are its own; nothing else scopes a key."""
    return tuple(name for name, task in registry.TASKS.items() if key in task.keys) or registry.names()


def flag(key: str) -> str:
    """The command-line spelling of a config key: `seq_len` -> `--seq-len`."""
    return "--" + key.replace("_", "-")


def describe(key: str, with_choices: bool = True) -> str:
    """Help text with the default, for `--help` (`with_choices`: and the values allowed, unless the value's name in
    the help lists them)."""
    allowed = f" ({'|'.join(choices(key))})" if choices(key) and with_choices else ""
    shown = FIELDS[key].metadata.get("shown") or written(key, Config().to_dict()[key])
    return f"{FIELDS[key].metadata['help']}{allowed} [default: {shown}]"


def metavar(key: str) -> str:
    """How `--help` names a key's value: its choices (lstm|gru|rnn), PATH, DURATION, N, NUMBER or TEXT."""
    rule, kind = FIELDS[key].metadata, FIELDS[key].type
    if choices(key):
        return "|".join(choices(key))
    if rule.get("path") or kind == list[str]:
        return "PATH"
    if rule.get("duration"):
        return "DURATION"
    return {int: "N", float: "NUMBER"}.get(kind, "TEXT")


def written(key: str, value: Any) -> str:
    """A value as a user would write it on the command line: 0.004, 10m, off, none."""
    if value in ("", []):
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if FIELDS[key].metadata.get("duration"):
        return format_duration(value) if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return ", ".join(value) if isinstance(value, list) else str(value)


GROUPS = {
    "data": ("corpus", "task", "encoding", "val_frac", "val_file", "newline", "max_vocab", "max_len"),
    "model": ("size", "cell", "layers", "hidden", "embed", "dtype", "forget_bias", "bidirectional"),
    "length": ("max_steps", "epochs", "max_time", "patience"),
    "output": ("run_dir", "eval_every", "save_every", "keep", "log_every", "sample_every"),
}
"""The keys' groups in `train --help` and docs/configuration.md, besides "training" (how the model learns: every key
not listed here) and the keys of one task (their task's own group)."""


def group(key: str) -> str:
    """The group of a config key: a task's name for a key only some tasks use, else one of GROUPS or "training"."""
    users = tasks_using(key)
    if len(users) < len(registry.names()) and key not in GROUPS["data"]:
        return "lm" if users == ("lm",) else "+".join(users)
    return next((name for name, keys in GROUPS.items() if key in keys), "training")


def check_value(key: str, value: Any) -> Any:
    """Return `value` converted to the key's type, or raise ValueError saying what is allowed."""
    f = FIELDS[key]
    rule = f.metadata
    if rule.get("duration") and isinstance(value, str):
        value = parse_duration(value)
    if f.type is bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false (got {value!r})")
    elif f.type is float:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # YAML 1.1 reads `2e-3` as a string; a user means a number
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number (got {value!r})")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number (got {value!r})")
    elif f.type is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number (got {value!r})")
    elif f.type is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string (got {value!r})")
    else:  # list[str]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"must be a file name or a list of file names (got {value!r})")
        value = list(value)
    allowed = choices(key)
    if allowed and value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"must be one of {', '.join(allowed)} (got {value!r}{hint})")
    for name, ok, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        if name in rule and not ok(value, rule[name]):
            raise ValueError(f"must be {word} {rule[name]} (got {value!r})")
    return value


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "10m", "1h30m" or "2.5h"."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d*)?)h)?\s*(?:(\d+(?:\.\d*)?)m)?\s*(?:(\d+(?:\.\d*)?)s?)?\s*", text)
    if not text.strip() or parts is None:
        raise ValueError(f"must be a duration like 90s, 10m or 1h30m (got {text!r})")
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts.groups())
    return 3600 * hours + 60 * minutes + seconds


def format_duration(seconds: float) -> str:
    """Seconds as a user writes a duration (parse_duration reads it back): 90 -> 1m30s, 3600 -> 1h, 0.4 -> 0.4s."""
    hours, rest = divmod(round(seconds), 3600)
    minutes, whole = divmod(rest, 60)
    parts = ((hours, "h"), (minutes, "m"), (whole, "s"))
    return "".join(f"{n}{unit}" for n, unit in parts if n) or f"{seconds:.1g}s"


def from_mapping(mapping: Any, source: str) -> dict[str, Any]:
    """Check a mapping of config keys (from YAML or a checkpoint); `source` names it in errors."""
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise CharRNNError(f"{source} must be a mapping of config keys to values, e.g. `hidden: 256`.")
    checked = {}
    for key, value in mapping.items():
        if key not in FIELDS:
            raise CharRNNError(f"{source}: unknown key '{key}'; {closest_key(key)}")
        try:
            checked[key] = check_value(key, value)
        except ValueError as e:
            raise CharRNNError(f"{source}: key '{key}' {e}.") from None
    return checked


def closest_key(key: object) -> str:
    """A hint for an unknown config key: the closest known one, or the list of them."""
    close = difflib.get_close_matches(str(key), FIELDS, n=1)
    return f"did you mean '{close[0]}'?" if close else f"valid keys are: {', '.join(FIELDS)}."


def read_yaml(path: Path) -> dict[str, Any]:
    """Read and check a YAML config file."""
    if not path.is_file():
        raise CharRNNError(f"config file {path} does not exist; check the path given to --config.")
    return from_mapping(parse_yaml(path, f"config file {path}"), f"config file {path}")


def parse_yaml(path: Path, what: str) -> Any:
    """The YAML document in `path` (`what` names it: "config file runs/x.yaml"); a syntax error is one sentence
    with its line and column, not the parser's multi-line report."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CharRNNError(f"{what} is not valid YAML{where}: {e.problem}.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CharRNNError(f"{what} could not be read as YAML: {' '.join(str(e).split())}.") from None


def build_config(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file, then command-line `overrides` (None means "not given")."""
    values = read_yaml(config_file) if config_file else {}
    for key, value in (overrides or {}).items():
        if key not in FIELDS:
            raise CharRNNError(f"unknown config key '{key}'; {closest_key(key)}")
        if value is None:
            continue
        try:
            values[key] = check_value(key, value)
        except ValueError as e:
            raise CharRNNError(f"{flag(key)} {e}.") from None
    return Config(**values)


def check_consistency(config: Config) -> None:
    """Values that are each allowed but contradict each other."""
    if config.lr_schedule in ("cosine", "wsd") and config.min_lr > config.lr:
        raise CharRNNError(
            f"--min-lr {config.min_lr} is above --lr {config.lr}; the {config.lr_schedule} schedule would rise."
        )
    task = registry.get(config.task)
    task.check(config)
    for key, f in FIELDS.items():
        users = tasks_using(key)
        if config.task not in users and getattr(config, key) != f.default:
            reason = task.refusals.get(key)
            raise CharRNNError(
                reason.format(task=config.task)
                if reason
                else f"{flag(key)} is for --task {' or '.join(users)} (this run's task is {config.task}); leave it out."
            )
    if config.size == "auto" and not config.max_time:
        raise CharRNNError("--size auto sizes the model for a time budget; give one with --max-time, e.g. 10m.")
    if config.patience and not config.validates:
        raise CharRNNError(
            "--patience needs validation passes, but --val-frac is 0 and there is no --val-file; set one of them."
        )
    if config.max_steps and config.warmup_steps >= config.max_steps:
        raise CharRNNError(
            f"--warmup-steps {config.warmup_steps} leaves no steps after the warm-up within --max-steps "
            f"{config.max_steps}; lower --warmup-steps."
        )
