"""Continuous batching: the samples a server is drawing from one language model, advanced together.

Each step draws one character for every stream in the batch with one `network.step` over all of them (one matrix
product per layer for all rows, instead of one per stream), then samples every row with its own temperature,
top-k, top-p and random numbers (`sampling.draw`). A stream joins at the next step after its prime is read, and
leaves when it reaches its length or a stop string, or when it is cancelled (its client went away): no row is
computed for a stream no one waits for.

Seeds: each stream draws its noise from its own generator, `default_rng(seed)`, in the order `charrnn sample` draws
it, so a seeded stream alone in the batch gives exactly the text `charrnn sample --seed` gives. Beside other
streams its logits come out of a larger matrix product, whose float rounding may differ in the last bits: the
random numbers are the same, so the text is the same unless two characters' scores fall within that rounding.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue

import numpy as np

from charrnn.data.text import Vocab
from charrnn.nn.functional import log_softmax
from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.tasks.sampling import GumbelNoise, Settings, draw, read_prime

PIECE = 8  # a streamed sample is sent in pieces of this many characters (or up to a line break)


@dataclass(eq=False)
class Sample:
    """One stream: what it asks for, then what it has drawn. `on_piece(sample, start, end)` (streamed samples) hears
    of each new piece, chars[start:end]; `on_done(sample)` of its end. Both are called on the batcher's thread."""

    prime: str
    length: int
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    stop: Sequence[str] = ()
    keep_stop: bool = True  # whether the text ends with the stop string it wrote (charrnn sample) or before it
    logprobs: int | None = None  # if set, each drawn character's log-probability and the top `logprobs` others
    prime_logprobs: bool = False  # the log-probability of each prime character after the first
    on_piece: Callable[["Sample", int, int], None] | None = None
    on_done: Callable[["Sample"], None] | None = None
    index: int = 0  # its place among the choices of its request

    chars: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)
    prime_token_logprobs: list[float] = field(default_factory=list)
    prime_top_logprobs: list[dict[str, float]] = field(default_factory=list)
    finish_reason: str | None = None  # "length", "stop", "cancelled", or "error"
    stopped_by: str = ""  # the stop string it wrote
    cancelled: bool = False  # set by the caller: the row leaves at the next step
    sent: int = 0  # characters handed to on_piece so far
    noise: GumbelNoise | None = None  # a seeded stream's own; the others' comes from the batcher's generator

    @property
    def text(self) -> str:
        return "".join(self.chars)

    @property
    def drawn(self) -> int:
        """Characters drawn, a stop string left out of the text included."""
        return len(self.chars) + (0 if self.keep_stop else len(self.stopped_by))


class Batcher:
    """Draws every sample submitted for one model on a thread of its own, all active ones as one batch. `lock`
    is the model's: held for each network call, so other requests may use the same network between steps.
    `on_step(rows)` hears of each step (metrics)."""

    def __init__(
        self,
        network: LanguageModelNetwork,
        vocab: Vocab,
        lock: threading.Lock,
        on_step: Callable[[int], None] | None = None,
        block: int = 256,
    ) -> None:
        self.network, self.vocab, self.lock, self.on_step, self.block = network, vocab, lock, on_step, block
        self.joining: SimpleQueue[list[Sample]] = SimpleQueue()
        self.wake = threading.Event()
        self.closed = False
        self.thread: threading.Thread | None = None
        self.rng = np.random.default_rng()  # the noise of rows without a seed
        self.start_lock = threading.Lock()
        self._empty()

    def _empty(self) -> None:
        self.rows: list[Sample] = []
        self.state = self.network.initial_state(0)
        self.logits = np.empty((0, len(self.vocab)), self.network.dtype)
        self.left = np.empty(0, int)  # characters each row may still draw
        self._changed()

    def _changed(self) -> None:
        """Work out what each step needs of the rows, once for every change of the batch."""
        rows = self.rows
        self.settings = Settings(
            np.array([row.temperature for row in rows], float),
            np.array([min(row.top_k, len(self.vocab)) for row in rows], int),  # any k >= V keeps all
            np.array([row.top_p for row in rows], float),
        )
        self.watched = [r for r, row in enumerate(rows) if row.stop or row.on_piece is not None]
        self.scored = [r for r, row in enumerate(rows) if row.logprobs is not None]
        self.own_noise = [r for r, row in enumerate(rows) if row.noise is not None and row.temperature > 0]
        self.shared_noise = np.array([row.noise is None for row in rows], bool)  # drawn at once, from self.rng

    def submit(self, samples: list[Sample]) -> None:
        """Add samples that share a prime (the choices of one request): they join the batch at its next step."""
        with self.start_lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="charrnn-batcher", daemon=True)
                self.thread.start()
        self.joining.put(samples)
        self.wake.set()

    def close(self) -> None:
        """Stop the thread after its current step (samples still in the batch are not finished)."""
        self.closed = True
        self.wake.set()
        if self.thread is not None:
            self.thread.join()

    @property
    def size(self) -> int:
        """Rows in the batch now."""
        return len(self.rows)

    def _run(self) -> None:
        with self.lock:
            self.network.prepare(feature_major=True)
        while not self.closed:
            if not self.rows and self.joining.empty():
                self.wake.wait()
                self.wake.clear()
                continue
            try:
                self._admit()
                self._step()
            except Exception:  # a failed step ends its rows, not the server; they answer "error"
                for row in self.rows:
                    self._finish(row, "error")
                self._empty()

    def _admit(self) -> None:
        """Read the prime of each group waiting to join, and add its samples as rows; a group that fails to join
        ends with "error", the others go on."""
        while True:
            try:
                group = self.joining.get_nowait()
            except Empty:
                return
            group = [sample for sample in group if not self._cancelled(sample)]
            try:
                if group:
                    self._join(group)
            except Exception:
                for sample in group:
                    if sample not in self.rows:
                        self._finish(sample, "error")
            self._changed()

    def _join(self, group: list[Sample]) -> None:
        first = group[0]
        with self.lock:  # the scratch arrays forward() returns are the network's: copied before another call
            logits, state = read_prime(self.network, self.vocab, first.prime, 1)
            logits, state = logits.copy(), [[array.copy() for array in layer] for layer in state]
        if first.prime and any(sample.prime_logprobs for sample in group):
            chosen = self.vocab.encode(first.prime)[1:]
            scores = log_softmax(logits[:-1].astype(np.float64))
            known = scores[np.arange(len(chosen)), chosen].tolist()
            top = [self._top(row, max(sample.logprobs or 0 for sample in group)) for row in scores]
            for sample in group:  # the same lists for all: they are read, never changed
                sample.prime_token_logprobs, sample.prime_top_logprobs = known, top
        for sample in group:
            if sample.length == 0:
                self._finish(sample, "length")
                continue
            if sample.seed is not None:
                sample.noise = GumbelNoise(np.random.default_rng(sample.seed), self.block)
            self.rows.append(sample)
            self.state = [
                [
                    np.asfortranarray(np.concatenate([old, new]))  # feature-major: see `Scratch.buf_like`
                    for old, new in zip(old_layer, new_layer, strict=True)
                ]
                for old_layer, new_layer in zip(self.state, state, strict=True)
            ]
            self.logits = np.concatenate([self.logits, logits[-1:]])
            self.left = np.append(self.left, sample.length)

    def _cancelled(self, sample: Sample) -> bool:
        if sample.cancelled:
            self._finish(sample, "cancelled")
        return sample.cancelled

    def _step(self) -> None:
        rows = self.rows
        if not rows:
            return
        ids = draw(self.logits, self.settings, self._noise())
        if self.scored:
            self._record_logprobs(self.scored, ids)
        chars = self.vocab.chars
        for row, i in zip(rows, ids.tolist(), strict=True):
            row.chars.append(chars[i])
        self.left -= 1
        ended = self.left == 0
        for r in self.watched:
            row = rows[r]
            if row.stop and self._wrote_stop(row):  # also on its last character
                ended[r] = True
            elif row.on_piece is not None and not ended[r]:
                self._send(row, finished=False)
        for r, row in enumerate(rows):
            if row.cancelled:
                row.finish_reason = "cancelled"
                ended[r] = True
        if self.on_step is not None:  # before any row's answer goes out: what a client sees, the metrics count
            self.on_step(len(rows))
        if ended.any():
            self._leave(ended)
            ids = ids[~ended]
        if self.rows:
            with self.lock:
                self.logits = self.network.step(ids.astype(self.vocab.dtype), self.state).copy()

    def _noise(self) -> np.ndarray:
        """The Gumbel noise of each row's draw: a seeded row's from its own generator, the others' at once."""
        noise = np.zeros(self.logits.shape)  # a greedy row's stays 0: it takes no noise
        V, shared = noise.shape[1], self.shared_noise
        if shared.any():
            noise[shared] = self.rng.gumbel(size=(int(shared.sum()), V))
        for r in self.own_noise:
            noise[r] = self.rows[r].noise.next(V)
        return noise

    def _leave(self, ended: np.ndarray) -> None:
        """End the rows marked and take them out of the batch."""
        for r in np.flatnonzero(ended):
            self._finish(self.rows[r], self.rows[r].finish_reason or "length")
        keep = ~ended
        self.rows = [row for row, kept in zip(self.rows, keep, strict=True) if kept]
        self.state = [[np.asfortranarray(array[keep]) for array in layer] for layer in self.state]
        self.logits, self.left = self.logits[keep], self.left[keep]
        self._changed()

    def _record_logprobs(self, scored: list[int], ids: np.ndarray) -> None:
        scores = log_softmax(self.logits[scored].astype(np.float64))
        for k, r in enumerate(scored):
            row = self.rows[r]
            row.token_logprobs.append(float(scores[k, ids[r]]))
            row.top_logprobs.append(self._top(scores[k], row.logprobs))

    def _top(self, scores: np.ndarray, count: int) -> dict[str, float]:
        """The `count` most likely characters of one row of log-probabilities, with theirs."""
        return {self.vocab.chars[i]: float(scores[i]) for i in np.argsort(-scores, kind="stable")[:count]}

    @staticmethod
    def _wrote_stop(row: Sample) -> bool:
        """Whether the row's text now ends with one of its stop strings (then it ends; the text loses the stop
        string unless keep_stop)."""
        for stop in row.stop:
            if len(row.chars) >= len(stop) and "".join(row.chars[-len(stop) :]) == stop:
                row.finish_reason, row.stopped_by = "stop", stop
                if not row.keep_stop:
                    del row.chars[len(row.chars) - len(stop) :]
                    del row.token_logprobs[len(row.chars) :]
                    del row.top_logprobs[len(row.chars) :]
                return True
        return False

    def _send(self, row: Sample, finished: bool) -> None:
        """Hand the row's new characters to on_piece: a piece at a time, or all that is left when it ends. While
        a stop string could still be forming (keep_stop False), its possible start is held back."""
        held = 0 if finished or row.keep_stop or not row.stop else max(map(len, row.stop)) - 1
        end = len(row.chars) - held
        if end > row.sent and (finished or end - row.sent >= PIECE or row.chars[end - 1] == "\n"):
            start, row.sent = row.sent, end
            row.on_piece(row, start, end)

    def _finish(self, row: Sample, reason: str) -> None:
        row.finish_reason = reason
        try:
            if row.on_piece is not None and reason in ("length", "stop"):
                self._send(row, finished=True)
            if row.on_done is not None:
                row.on_done(row)
        except RuntimeError:  # its caller's event loop has closed (the server is stopping): no one to tell
            pass
