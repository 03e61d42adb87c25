"""How long a run trains: the one rule that turns --max-steps, --epochs and --max-time into the run's length, and the
words the start and end lines use for it.

The rule: a limit the user gives is never overridden by a default they did not give. Each limit given bounds the
run and the first one reached stops it; a run given none stops after DEFAULT_EPOCHS passes over its training data.
--max-time is the wall-clock budget of the whole command: the trainer stops stepping early enough for its last
validation pass and save to fit in it.
"""

import math
from dataclasses import dataclass

from charrnn.training.config import Config, format_duration

DEFAULT_EPOCHS = 10.0
"""The length of a run given no --max-steps, --epochs or --max-time."""


@dataclass(frozen=True)
class RunLength:
    """The limits of a run: the step it stops at (None: only its time budget bounds it), what sets that step, and
    its time budget in seconds (None: no budget), all counted over the whole run, resumes included."""

    steps: int | None
    steps_by: str
    seconds: float | None

    @classmethod
    def of(cls, config: Config, steps_per_epoch: int) -> "RunLength":
        epochs = config.epochs or (0.0 if config.max_steps or config.max_time else DEFAULT_EPOCHS)
        bounds = []  # the step each limit stops at, what sets it, and how it reads as the limit not reached
        if config.max_steps:
            bounds.append((config.max_steps, "--max-steps", f"--max-steps {config.max_steps:,}"))
        if epochs:
            step = math.ceil(epochs * steps_per_epoch)
            given = "as no --max-steps, --epochs or --max-time was given"
            name = f"--epochs {epochs:g}" if config.epochs else f"{epochs:g} epochs, the default {given}"
            bounds.append((step, name, f"{name} at step {step:,}"))
        if not bounds:
            return cls(None, "", config.max_time or None)
        bounds.sort()
        steps, steps_by, _ = bounds[0]
        if len(bounds) == 2 and bounds[1][0] > steps:
            steps_by += f", before {bounds[1][2]}"
        return cls(steps, steps_by, config.max_time or None)

    def describe(self, step: int, batch: str, spent: float = 0.0) -> str:
        """The start line's words: from which step to which, and which limit binds and why (`spent`: the seconds a
        resumed run has had)."""
        budget = ""
        if self.seconds:
            total = format_duration(self.seconds)
            left = f"{format_duration(max(0.0, self.seconds - spent))} more of --max-time {total}" if spent else total
            budget = f"{left} (the last validation and save included)"
        if self.steps is None:
            return f"from step {step:,} for {budget}, steps of {batch}"
        steps = f"steps {step:,} to {self.steps:,} of {batch} ({self.steps_by})"
        return f"{steps} or {budget}, whichever ends first" if self.seconds else steps
