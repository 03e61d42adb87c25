"""POST /v1/completions: OpenAI's (legacy) completions API over a character model, where a token is a character.

Each prompt gets `n` choices, numbered prompt by prompt (index = prompt * n + choice), each a row of the model's
batch. With a seed, choice i draws what `seed + i` gives alone (`charrnn sample --seed`). A stop string ends a
choice and is left out of its text, as OpenAI's; `echo` puts the prompt before each text. `logprobs` are the
model's own (temperature 1, nothing cut by top-k or top-p): each character's and its `logprobs` most likely
alternatives, exactly, as a character model has them all.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from charrnn.interfaces.serve.events import event_stream, merged, sse
from charrnn.interfaces.serve.operations import error_body
from charrnn.interfaces.serve.schemas import CompletionRequest, stop_strings
from charrnn.tasks.batching import Sample
from charrnn.tasks.model import Model

from .limits import Limits, RequestError


class Sampling(Protocol):
    """What the route asks of the server (`app.Server`): its models and limits, a worker place, and the batcher."""

    limits: Limits

    def model(self, name: str | None, verb: str, action: str) -> tuple[str, Model]: ...
    def prime(self, model: Model, prime: str, unknown: str = "error", key: str = "prime") -> str: ...
    def length(self, length: int, key: str) -> int: ...
    def refuse_if_full(self) -> None: ...
    def working(self) -> AbstractAsyncContextManager[None]: ...
    async def draw_samples(
        self, request: Any, name: str, groups: list[list[Sample]], streamed: bool = False
    ) -> None: ...
    def stream(self, request: Any, name: str, groups: list[list[Sample]]) -> tuple[asyncio.Queue, asyncio.Future]: ...
    async def cancel(self, samples: list[Sample], drawing: asyncio.Future) -> None: ...


def logprobs_of(sample: Sample, start: int, end: int, echo: bool, prompt: bool = False) -> dict[str, Any]:
    """OpenAI's logprobs object for the drawn characters start:end of a choice (with prompt, the echoed prompt's
    before them: its first has none). text_offset counts characters of the choice's text, the echoed prompt
    included."""
    tokens = sample.chars[start:end]
    token_logprobs: list[float | None] = sample.token_logprobs[start:end]
    top_logprobs: list[dict[str, float] | None] = sample.top_logprobs[start:end]
    offset = start + (len(sample.prime) if echo else 0)
    if prompt and sample.prime:
        tokens = list(sample.prime) + tokens
        token_logprobs = [None, *sample.prime_token_logprobs, *token_logprobs]
        top_logprobs = [None, *sample.prime_top_logprobs, *top_logprobs]
        offset = 0
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": list(range(offset, offset + len(tokens))),
    }


class Completions:
    """The route's work: the request's samples, then the answer (whole, or as events) from what they drew."""

    def __init__(self, server: Sampling) -> None:
        self.server = server

    def samples(self, body: CompletionRequest) -> tuple[str, list[str], list[list[Sample]]]:
        """The model's name, the prompts, and a group of `n` samples for each prompt."""
        unsupported(body)
        name, model = self.server.model(body.model, "sample", "completing text")
        prompts = [body.prompt or ""] if isinstance(body.prompt, str | None) else body.prompt
        n, most = body.n or 1, self.server.limits.max_inputs
        if len(prompts) * n > most:
            message = (
                f"{len(prompts)} prompts with `n` {n} make {len(prompts) * n} choices, more than this server draws"
            )
            raise RequestError(400, f"{message} at once ({most}).", "n")
        scored = n * sum(map(len, prompts)) if body.echo and body.logprobs is not None else 0
        if scored > self.server.limits.max_chars:
            message = f"`echo` with `logprobs` scores every prompt character for each choice: {scored} here, more than"
            raise RequestError(400, f"{message} {self.server.limits.max_chars}; ask for fewer `n` or shorter prompts.")
        length = self.server.length(16 if body.max_tokens is None else body.max_tokens, "max_tokens")
        stop = stop_strings(body.stop)
        groups = []
        for p, prompt in enumerate(prompts):
            key = "prompt" if isinstance(body.prompt, str | None) else f"prompt[{p}]"
            prompt = self.server.prime(model, prompt, body.unknown, key)
            group = []
            for index in range(p * n, (p + 1) * n):
                sample = Sample(
                    prime=prompt,
                    length=length,
                    temperature=1.0 if body.temperature is None else body.temperature,
                    top_k=max(body.top_k or 0, 0),
                    top_p=1.0 if body.top_p is None else body.top_p,
                    seed=None if body.seed is None else body.seed + index,
                    stop=stop,
                    keep_stop=False,
                    logprobs=body.logprobs,
                    prime_logprobs=body.logprobs is not None and bool(body.echo),
                    index=index,
                )
                group.append(sample)
            groups.append(group)
        return name, prompts, groups

    async def create(self, request: Any, body: CompletionRequest) -> Any:
        name, prompts, groups = self.samples(body)
        if body.stream:
            self.server.refuse_if_full()
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return event_stream(self.events(request, name, prompts, groups, body, usage))
        async with self.server.working():
            await self.server.draw_samples(request, name, groups)
        choices = []
        for sample in (sample for group in groups for sample in group):
            echo = bool(body.echo)
            logprobs = None if body.logprobs is None else logprobs_of(sample, 0, len(sample.chars), echo, echo)
            choice = {"text": (sample.prime if echo else "") + sample.text, "index": sample.index, "logprobs": logprobs}
            choices.append({**choice, "finish_reason": sample.finish_reason})
        return {**self.head(name), "choices": choices, "usage": usage_of(prompts, groups)}

    @staticmethod
    def head(name: str) -> dict[str, Any]:
        created = int(time.time())
        return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": created, "model": name}

    async def events(
        self,
        request: Any,
        name: str,
        prompts: list[str],
        groups: list[list[Sample]],
        body: CompletionRequest,
        with_usage: bool,
    ) -> AsyncIterator[str]:
        """Server-sent events in OpenAI's form: a chunk for each piece of each choice (the echoed prompt first),
        a last chunk per choice with its finish_reason, with stream_options.include_usage one with the usage, then
        `data: [DONE]`. A failure after the stream's 200 is an event {"error": {...}}, which OpenAI's SDK raises."""
        head, echo, with_logprobs = self.head(name), bool(body.echo), body.logprobs is not None
        samples = [sample for group in groups for sample in group]

        def chunk(sample: Sample, text: str, logprobs: Any = None, finish: str | None = None) -> str:
            choice = {"text": text, "index": sample.index, "logprobs": logprobs, "finish_reason": finish}
            return sse({**head, "choices": [choice]})

        started: set[int] = set()
        ended: set[int] = set()

        def begin(sample: Sample) -> list[str]:
            """The echoed prompt, before a choice's first piece (its log-probabilities are known by then)."""
            if id(sample) in started or not (echo and sample.prime):
                return []
            started.add(id(sample))
            return [chunk(sample, sample.prime, logprobs_of(sample, 0, 0, echo, True) if with_logprobs else None)]

        try:
            async with self.server.working():
                pieces, drawing = self.server.stream(request, name, groups)
                try:
                    async for sample, text, start, end, finish in merged(pieces):
                        for event in begin(sample):
                            yield event
                        yield chunk(sample, text, logprobs_of(sample, start, end, echo) if with_logprobs else None)
                        if finish in ("stop", "length"):
                            ended.add(id(sample))
                            yield chunk(sample, "", None, finish)
                    await drawing
                    for sample in samples:
                        for event in begin(sample):
                            yield event
                        if id(sample) not in ended:
                            yield chunk(sample, "", None, sample.finish_reason)
                    if with_usage:
                        yield sse({**head, "choices": [], "usage": usage_of(prompts, groups)})
                finally:
                    await self.server.cancel(samples, drawing)
        except RequestError as e:
            yield sse(error_body(request.url.path, e.status, e.message, e.param, e.code))
        yield "data: [DONE]\n\n"


def usage_of(prompts: list[str], groups: list[list[Sample]]) -> dict[str, int]:
    """OpenAI's usage: characters of the prompts, and characters drawn (a stop string left out of a text included)."""
    prompt_tokens = sum(map(len, prompts))
    completion_tokens = sum(sample.drawn for group in groups for sample in group)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def unsupported(body: CompletionRequest) -> None:
    """Refuse OpenAI's options that would change the answer in a way charrnn does not do; their neutral values
    (which some clients always send) pass."""
    neutral = {"best_of": (None, 1), "frequency_penalty": (None, 0), "presence_penalty": (None, 0)}
    neutral |= {"logit_bias": (None, {}), "suffix": (None, "")}
    for key, values in neutral.items():
        if getattr(body, key) not in values:
            message = f"`{key}` is an OpenAI option charrnn does not support; leave it out (or send {values[1]!r})."
            raise RequestError(400, message, key)
