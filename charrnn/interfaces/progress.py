"""The live display of a training run, the same for `charrnn train` and `charrnn.train()` (in a terminal or a
notebook): a progress bar on stderr that follows the limit that binds (steps or time), and per validation pass one
plain line above it (the command line's go to stdout when that is not a terminal, for scripts and logs).

It fits 80 columns: the bar takes what the figures leave, and a validation line wraps between words. In a notebook
without ipywidgets (which rich needs to redraw a bar there) the bar's words are printed at every tenth of the run.
"""

import importlib.util
import math
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from charrnn.nn.metrics import LOG2E
from charrnn.tasks import registry
from charrnn.training.trainer import TrainEvent


class TrainDisplay:
    """Draws TrainEvents; use it as a context manager around the run, and pass `on_event` as its callback."""

    def __init__(self, console: Console | None = None, lines_to_stdout: bool = False) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.console.soft_wrap = not self.console.is_terminal  # a log keeps each line whole
        self.bar = BarColumn(bar_width=20)
        self.tenths = self.console.is_jupyter and importlib.util.find_spec("ipywidgets") is None
        self.reported = -1  # the last tenth of the run printed, where the bar cannot be redrawn
        self.progress = Progress(
            TextColumn("{task.fields[where]}"),
            self.bar,
            TextColumn("{task.fields[figures]}"),
            console=self.console,
            disable=self.tenths,
        )
        self.task = self.progress.add_task("train", total=None, where="", figures="")
        self.lines_to_stdout = lines_to_stdout and not (sys.stdout.isatty() and self.console.is_terminal)

    def __enter__(self) -> "TrainDisplay":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:  # a run refused before it began leaves no empty line
            self.progress.stop()

    def on_event(self, event: TrainEvent) -> None:
        if event.kind in ("start", "notice"):
            style = "yellow" if event.kind == "notice" else None
            self.console.print(f"charrnn: {event.text}", style=style, markup=False)
            if event.kind == "start":  # the bar appears once the run has begun, not while its input is checked
                self.progress.start()
            return
        self.draw(event)
        if event.kind == "eval":
            self.line(event)
        elif event.kind == "sample":
            self.console.print(f"── sample at step {event.step} ──\n{event.text}", style="dim", markup=False)

    def draw(self, event: TrainEvent) -> None:
        """The bar: where the run is against the limit that binds, then loss, validation, speed and time left."""
        if event.time_bound and event.time_budget and event.remaining is not None:
            spent = event.time_budget - event.remaining
            where = f"step {event.step:,} {clock(spent)}/{clock(event.time_budget)}"
        else:
            where = f"step {event.step:,}" + (f"/{event.total_steps:,}" if event.total_steps else "")
        loss = "-" if math.isnan(event.train_loss) else f"{event.train_loss:.3f}"
        val = "-" if event.val_loss is None else f"{event.val_loss:.3f}"
        left = "" if event.remaining is None else f" {clock(event.remaining)} left"
        figures = f"{100 * event.progress:3.0f}% loss {loss} val {val} {speed(event, 'ex')}{left}"
        self.bar.bar_width = max(5, min(30, self.console.width - len(where) - len(figures) - 3))
        self.progress.update(self.task, completed=event.progress, total=1.0, where=where, figures=figures)
        if self.tenths and math.floor(10 * event.progress) > self.reported:
            self.reported = math.floor(10 * event.progress)
            self.console.print(f"{where} {figures}", markup=False)

    def line(self, event: TrainEvent) -> None:
        """One line per validation pass (scripts read it: its words do not change with the terminal)."""
        task = registry.get(event.task)
        parts = [f"step {event.step}", f"epoch {event.epoch:.2f}", f"train {event.train_loss:.3f}"]
        if event.evaluated and event.val_loss is not None:
            bits = f" ({event.val_loss * LOG2E:.3f} bits/char)" if task.counts == "characters" else ""
            parts.append(f"val_loss={event.val_loss:.4f} nats/{task.loss_unit}{bits}")
            parts += task.format_figures(event.metrics)
        parts.append(speed(event, "examples"))
        if event.best:
            parts.append("best")
        parts.append(f"lr {event.lr:.3g}")
        if event.saved:
            parts.append(f"saved {event.saved}")
        text = " · ".join(parts)
        if self.lines_to_stdout:
            print(text, flush=True)
        else:
            self.progress.console.print(text, markup=False)


def speed(event: TrainEvent, examples: str) -> str:
    """Training speed in what the task counts: characters, or examples (named `examples`) a second."""
    if registry.get(event.task).counts == "characters":
        return f"{event.chars_per_sec:,.0f} chars/s"
    return f"{event.examples_per_sec:,.0f} {examples}/s"


def clock(seconds: float) -> str:
    """Seconds as a clock: 0:35, 12:04, 1:02:03."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
