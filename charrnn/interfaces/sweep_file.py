"""A sweep file, read and checked: the base run's config keys, what to search (`search:`), how many trials, the
metric to rank by, early stopping and the sweep's name (the format is in `charrnn.interfaces.sweep`'s docstring).
Every mistake is one sentence naming the key and the fix; nothing here needs Ray."""

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charrnn.data.datasets import resolve
from charrnn.errors import CharRNNError
from charrnn.tasks import registry
from charrnn.training.config import FIELDS, SWEEPABLE, Config, check_value, closest_key, from_mapping, parse_yaml

SWEEP_KEYS = ("search", "trials", "metric", "early_stop", "name")
RANGES = ("uniform", "loguniform", "int")


@dataclass
class Sweep:
    """A sweep file, checked: the base config, what to search, and how."""

    base: Config
    search: dict[str, Any]  # key -> a list, or {"uniform" | "loguniform" | "int": [low, high]}
    trials: int
    metric: str
    early_stop: bool
    name: str
    source: dict = field(default_factory=dict)  # the file as read, to tell this sweep from another

    @property
    def mode(self) -> str:
        return "max" if registry.get(self.base.task).maximised(self.metric) else "min"


def read_sweep(path: Path, name: str = "") -> Sweep:
    """Read and check a sweep file; every mistake is one sentence naming the key and the fix. The sweep's name is
    its `name:`, else `name`, else the file's stem."""
    if not path.is_file():
        raise CharRNNError(f"sweep file {path} does not exist; check the path.")
    document = parse_yaml(path, f"sweep file {path}")
    if not isinstance(document, dict):
        raise CharRNNError(f"sweep file {path} must be a mapping of config keys, with a `search:` section.")
    where = f"sweep file {path}"
    unknown = [k for k in document if k not in FIELDS and k not in SWEEP_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), [*FIELDS, *SWEEP_KEYS], n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"the sweep keys are {', '.join(SWEEP_KEYS)}."
        raise CharRNNError(f"{where}: unknown key '{unknown[0]}'; {hint}")
    values = from_mapping({k: v for k, v in document.items() if k in FIELDS}, where)
    if not values.get("corpus"):
        raise CharRNNError(f"{where} names no corpus; add `corpus: FILE`.")
    if not any(k in document for k in ("max_time", "max_steps", "epochs")):
        raise CharRNNError(f"{where} gives the trials no budget; add max_time (e.g. 2m), max_steps or epochs.")
    values["corpus"] = [str(resolve(p).resolve()) for p in values["corpus"]]  # each trial reads it where it runs
    if values.get("val_file"):
        values["val_file"] = str(resolve(values["val_file"]).resolve())
    base = Config(**values)
    search = document.get("search")
    if not isinstance(search, dict) or not search:
        raise CharRNNError(f"{where} has no `search:` section; give it the keys to vary, e.g. `hidden: [64, 128]`.")
    for key, spec in search.items():
        _check_search(key, spec, where)
    trials = document.get("trials", 8)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise CharRNNError(f"{where}: `trials` must be a whole number >= 1 (got {trials!r}).")
    metric = document.get("metric", "val_loss")
    measured = ("val_loss", *registry.get(base.task).headline())
    if metric not in measured:
        raise CharRNNError(
            f"{where}: `metric` {metric!r} is not measured for --task {base.task}; use one of {', '.join(measured)}."
        )
    early_stop = document.get("early_stop", True)
    if not isinstance(early_stop, bool):
        raise CharRNNError(f"{where}: `early_stop` must be true or false (got {early_stop!r}).")
    name = str(document.get("name") or name or path.stem)
    for sample in _corners(search):  # every extreme of the search must make a valid config
        try:
            base.replace(**sample)
        except CharRNNError as e:
            raise CharRNNError(f"{where}: the search can make an invalid run: {e}") from None
    return Sweep(base, search, trials, metric, early_stop, name, document)


def _check_search(key: str, spec: Any, where: str) -> None:
    if key not in FIELDS:
        raise CharRNNError(f"{where}: search key '{key}' is not a config key; {closest_key(key)}")
    if key not in SWEEPABLE:
        raise CharRNNError(
            f"{where}: '{key}' may not vary between trials (every trial reads the same data for the same budget); "
            f"set it above `search:`. Keys that may vary: {', '.join(SWEEPABLE)}."
        )
    if isinstance(spec, list):
        if not spec:
            raise CharRNNError(f"{where}: search key '{key}' has an empty list; give it the values to try.")
        for value in spec:
            try:
                check_value(key, value)
            except ValueError as e:
                raise CharRNNError(f"{where}: search key '{key}': {value!r} {e}.") from None
        return
    if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANGES):
        raise CharRNNError(
            f"{where}: search key '{key}' must be a list of values or one of {{uniform: [low, high]}}, "
            "{loguniform: [low, high]}, {int: [low, high]}."
        )
    kind, bounds = next(iter(spec.items()))
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, int | float) for b in bounds)):
        raise CharRNNError(f"{where}: search key '{key}': {kind} needs [low, high], two numbers (got {bounds!r}).")
    low, high = bounds
    if low >= high:
        raise CharRNNError(f"{where}: search key '{key}': {kind} [{low}, {high}] is empty; low must be below high.")
    if kind == "loguniform" and low <= 0:
        raise CharRNNError(f"{where}: search key '{key}': loguniform needs low > 0 (got {low}); use uniform.")
    if kind == "int" and not all(isinstance(b, int) for b in bounds):
        raise CharRNNError(f"{where}: search key '{key}': int needs whole numbers (got {bounds!r}).")
    if kind != "int" and FIELDS[key].type is int:
        raise CharRNNError(f"{where}: search key '{key}' takes whole numbers; use {{int: [{low}, {high}]}}.")
    for value in bounds:
        try:
            check_value(key, value)
        except ValueError as e:
            raise CharRNNError(f"{where}: search key '{key}': {value!r} {e}.") from None


def _corners(search: dict[str, Any]) -> list[dict[str, Any]]:
    """A few samples that together reach every listed value and both ends of every range."""
    options = {k: (v if isinstance(v, list) else next(iter(v.values()))) for k, v in search.items()}
    width = max(len(v) for v in options.values())
    return [{k: v[min(i, len(v) - 1)] for k, v in options.items()} for i in range(width)]
