"""POST /v1/completions: OpenAI's (legacy) completions API over a character model, where a token is a character.

Each prompt gets `n` choices, numbered prompt by prompt (index = prompt * n + choice), each a row of the model's
batch. With a seed, choice i draws what `seed + i` gives alone (`charrnn sample --seed`). A stop string ends a
choice and is left out of its text, as OpenAI's; `echo` puts the prompt before each text. `logprobs` are the
model's own (temperature 1, nothing cut by top-k or top-p): each character's and its `logprobs` most likely
alternatives, exactly, as a character model has them all.
"""

import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from charrnn.interfaces.serve.events import event_stream, merged, sse
from charrnn.interfaces.serve.schemas import CompletionRequest
from charrnn.tasks.batching import Sample

from .limits import RequestError

if TYPE_CHECKING:
    from charrnn.interfaces.serve.app import Server


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
    def __init__(self, server: "Server") -> None:
        self.server = server

    def samples(self, body: CompletionRequest) -> tuple[str, list[str], list[list[Sample]]]:
        """The model's name, the prompts, and a group of `n` samples for each prompt."""
        name, model = self.server.model(body.model, "sample", "completing text")
        prompts = [body.prompt or ""] if isinstance(body.prompt, str | None) else body.prompt
        n = body.n or 1
        if len(prompts) * n > self.server.limits.max_inputs:
            message = (
                f"{len(prompts)} prompts with `n` {n} make {len(prompts) * n} choices, more than this server draws "
                f"at once ({self.server.limits.max_inputs})."
            )
            raise RequestError(400, message, "n")
        length = self.server.length(16 if body.max_tokens is None else body.max_tokens, "max_tokens")
        stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
        groups = []
        for p, prompt in enumerate(prompts):
            prompt = self.server.prime(model, prompt, key="prompt")
            group = []
            for index in range(p * n, (p + 1) * n):
                sample = Sample(
                    prime=prompt,
                    length=length,
                    temperature=1.0 if body.temperature is None else body.temperature,
                    top_k=max(body.top_k or 0, 0),
                    top_p=1.0 if body.top_p is None else body.top_p,
                    seed=None if body.seed is None else body.seed + index,
                    stop=tuple(s for s in stop if s),
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
            return event_stream(self.events(request, name, groups, bool(body.echo), body.logprobs is not None))
        async with self.server.working():
            await self.server.draw(request, name, groups)
        choices = []
        for sample in (sample for group in groups for sample in group):
            echo = bool(body.echo)
            logprobs = None if body.logprobs is None else logprobs_of(sample, 0, len(sample.chars), echo, echo)
            choice = {"text": (sample.prime if echo else "") + sample.text, "index": sample.index, "logprobs": logprobs}
            choices.append({**choice, "finish_reason": sample.finish_reason})
        prompt_tokens = sum(len(prompt) for prompt in prompts)
        completion_tokens = sum(sample.drawn for group in groups for sample in group)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return {**self.head(name), "choices": choices, "usage": usage}

    @staticmethod
    def head(name: str) -> dict[str, Any]:
        created = int(time.time())
        return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": created, "model": name}

    async def events(
        self, request: Any, name: str, groups: list[list[Sample]], echo: bool, with_logprobs: bool
    ) -> AsyncIterator[str]:
        """Server-sent events in OpenAI's form: a chunk for each piece of each choice (the echoed prompt first),
        a last chunk per choice with its finish_reason, then `data: [DONE]`."""
        head = self.head(name)
        samples = [sample for group in groups for sample in group]

        def chunk(sample: Sample, text: str, logprobs: Any = None, finish: str | None = None) -> str:
            choice = {"text": text, "index": sample.index, "logprobs": logprobs, "finish_reason": finish}
            return sse({**head, "choices": [choice]})

        async with self.server.working():
            pieces, drawing = self.server.stream(request, name, groups)
            started: set[int] = set()
            ended: set[int] = set()

            def begin(sample: Sample) -> list[str]:
                """The echoed prompt, before a choice's first piece (its log-probabilities are known by then)."""
                if id(sample) in started or not (echo and sample.prime):
                    return []
                started.add(id(sample))
                return [chunk(sample, sample.prime, logprobs_of(sample, 0, 0, echo, True) if with_logprobs else None)]

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
                yield "data: [DONE]\n\n"
            finally:
                await self.server.stop(samples, drawing)
