"""The routes of `charrnn serve` and what they do with the models (see the package's docstring for the list).

Sampling (native and OpenAI's completions) goes through each language model's `Batcher`: every sample in flight
is a row of one batch, advanced a character at a time together. Scoring, classifying, tagging and translating
run in worker threads, one call at a time per model (a network's buffers are its own; the batcher takes the same
lock between its steps); classify, tag and translate requests that wait together with the same options are one
call. A request holds one of `workers` places while it computes, `queue` more may wait, and one beyond that is
answered 503 with Retry-After at once.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.interfaces.serve import schemas
from charrnn.interfaces.serve.completions import Completions
from charrnn.interfaces.serve.events import disconnected, event_stream, merged, sse
from charrnn.interfaces.serve.operations import Front, Gate, Metrics, error_body
from charrnn.tasks.batching import Batcher, Sample
from charrnn.tasks.model import Model
from charrnn.tasks.sampling import check_prime
from charrnn.training.run import json_safe
from charrnn.version import __version__

from .limits import Limits, RequestError, flags_to_keys

LISTED = ("task", "cell", "layers", "hidden", "parameters", "vocab_size", "outputs", "step", "val_loss")


def describe(name: str, model: Model) -> dict[str, Any]:
    """A model as GET /v1/models lists it: OpenAI's entry, with what `charrnn info --json` says of it under
    "charrnn"."""
    info = model.info
    listed = {key: info[key] for key in LISTED} | {key: info["config"][key] for key in ("bidirectional", "embed")}
    details = {"name": name, "kind": model.kind, "outputs_name": model.outputs_name, **listed}
    created = int(model.path.stat().st_mtime)
    return {"id": name, "object": "model", "created": created, "owned_by": "charrnn", "charrnn": details}


class Server:
    """The models and what the API does with them; `app()` makes the ASGI application."""

    def __init__(
        self,
        models: dict[str, Model],
        limits: Limits,
        token: str | None = None,
        cors_origins: tuple[str, ...] = (),
        quiet: bool = False,
    ) -> None:
        self.models, self.limits, self.token, self.cors_origins, self.quiet = models, limits, token, cors_origins, quiet
        self.locks = {name: threading.Lock() for name in models}
        self.metrics = Metrics()
        self.batchers = {
            name: Batcher(model.network, model.vocab, self.locks[name], self.metrics.stepper(name))
            for name, model in models.items()
            if hasattr(model, "sample")
        }
        self.admitted = 0  # requests computing or waiting for a worker
        self.running = 0  # requests computing
        self.waiting: dict[str, list] = {}  # per model: classify, tag and translate requests not yet computed
        self.merging: dict[str, asyncio.Future] = {}  # per model: the task computing its waiting requests
        self.slots: asyncio.Semaphore | None = None  # a worker each, made in the server's event loop

    def close(self) -> None:
        """Stop the batchers' threads."""
        for batcher in self.batchers.values():
            batcher.close()

    def model(self, name: str | None, verb: str, action: str) -> tuple[str, Model]:
        if name is None and len(self.models) == 1:
            name = next(iter(self.models))
        if name is None:
            raise RequestError(400, f"`model` is needed: this server serves {', '.join(self.models)}.", param="model")
        if name not in self.models:
            known = ", ".join(self.models)
            message = f'no model is served as "{name}"; the models are {known}.'
            raise RequestError(404, message, param="model", code="model_not_found")
        model = self.models[name]
        if not hasattr(model, verb):
            raise RequestError(400, f"{action} needs another kind of model, but {name!r} is {model.kind}.", "model")
        return name, model

    # -- admission: workers, queue, 503 -----------------------------------------------------------------------

    def refuse_if_full(self) -> None:
        """A 503 at once when every worker and queue place is taken."""
        if self.admitted >= self.limits.workers + self.limits.queue:
            raise RequestError(
                503,
                "the server is busy (every worker and queue place is taken); retry in a moment.",
                headers={"Retry-After": "1"},
            )

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """Hold a worker place for the request (waiting in the queue for one), or refuse it when full."""
        self.refuse_if_full()
        self.admitted += 1
        self.slots = self.slots or asyncio.Semaphore(self.limits.workers)
        self.metrics.queued.set(self.admitted - self.running)
        try:
            async with self.slots:
                self.running += 1
                self.metrics.queued.set(self.admitted - self.running)
                try:
                    yield
                finally:
                    self.running -= 1
        finally:
            self.admitted -= 1
            self.metrics.queued.set(self.admitted - self.running)

    async def compute(self, name: str, work: Callable[[], Any]) -> Any:
        """Run `work` in a worker thread, holding the model's lock, once a worker is free."""
        async with self.working():
            return await asyncio.to_thread(self._locked, name, work)

    def _locked(self, name: str, work: Callable[[], Any]) -> Any:
        with self.locks[name]:
            try:
                return work()
            except CharRNNError as e:
                raise RequestError(400, flags_to_keys(str(e))) from None

    # -- sampling through the batcher ---------------------------------------------------------------------------

    def prime(self, model: Model, prime: str, unknown: str = "error", key: str = "prime") -> str:
        if len(prime) > self.limits.max_chars:
            raise RequestError(413, f"`{key}` has {len(prime)} characters, more than {self.limits.max_chars}.", key)
        try:
            return check_prime(model.vocab, prime, unknown, what=f"`{key}`")
        except CharRNNError as e:
            raise RequestError(400, flags_to_keys(str(e)), key) from None

    def length(self, length: int, key: str) -> int:
        if length > self.limits.max_length:
            message = f"`{key}` {length} is more than this server draws ({self.limits.max_length}); ask for fewer."
            raise RequestError(400, message, key)
        return length

    async def draw_samples(self, request: Any, name: str, groups: list[list[Sample]], streamed: bool = False) -> None:
        """Submit the samples (grouped by prime) to the model's batcher and wait for all of them; a client that goes
        away cancels them, so their rows leave the batch at the next step."""
        loop = asyncio.get_running_loop()
        samples = [sample for group in groups for sample in group]
        finished = loop.create_future()
        left = [len(samples)]

        def one_done() -> None:
            left[0] -= 1
            if left[0] == 0 and not finished.done():
                finished.set_result(None)

        for sample in samples:
            sample.on_done = lambda _: loop.call_soon_threadsafe(one_done)
        for group in groups:
            self.batchers[name].submit(group)
        watch = None if streamed else asyncio.ensure_future(disconnected(request))
        try:
            await (finished if watch is None else asyncio.wait({finished, watch}, return_when="FIRST_COMPLETED"))
        finally:
            if watch is not None:
                watch.cancel()
            for sample in samples:
                sample.cancelled = True  # those still drawing leave at the next step
        if not finished.done():  # logged as nginx logs it: 499, the client closed the request
            raise RequestError(499, "the client went away before its answer was ready.")
        if any(sample.finish_reason == "error" for sample in samples):
            raise RequestError(500, "the server failed while sampling; it is still up.")

    def native_sample(self, model: Model, body: schemas.SampleRequest) -> Sample:
        return Sample(
            prime=self.prime(model, body.prime, body.unknown),
            length=self.length(body.length, "length"),
            temperature=body.temperature,
            top_k=body.top_k,
            top_p=body.top_p,
            seed=body.seed,
            stop=schemas.stop_strings(body.stop),
        )

    async def sample(self, request: Any, body: schemas.SampleRequest) -> Any:
        name, model = self.model(body.model, "sample", "sampling")
        sample = self.native_sample(model, body)
        if body.stream:
            self.refuse_if_full()  # now, before the stream's 200 (the stream counts itself in when it starts)
            return event_stream(self.native_events(request, name, sample))
        async with self.working():
            await self.draw_samples(request, name, [[sample]])
        return {"model": name, "text": sample.prime + sample.text}

    async def native_events(self, request: Any, name: str, sample: Sample) -> AsyncIterator[str]:
        """Server-sent events of a sample: the prime, then a piece at a time as it is drawn, then "end"; a failure
        after the stream's 200 is an "error" event with the sentence."""
        try:
            async with self.working():
                pieces, drawing = self.stream(request, name, [[sample]])
                try:
                    if sample.prime:
                        yield sse({"text": sample.prime})
                    async for piece in merged(pieces):
                        yield sse({"text": piece[1]})
                    await drawing
                    yield "event: end\ndata: {}\n\n"
                finally:
                    await self.cancel([sample], drawing)
        except RequestError as e:
            yield "event: error\n" + sse({"error": e.message})

    def stream(self, request: Any, name: str, groups: list[list[Sample]]) -> tuple[asyncio.Queue, asyncio.Future]:
        """Start drawing the samples; the queue receives (sample, text, start, end, finish_reason or None) for
        each piece as it is drawn, then None once all have ended (the future: their end)."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()

        def piece(sample: Sample, start: int, end: int) -> None:
            text, finish = "".join(sample.chars[start:end]), sample.finish_reason  # read now, on the batcher's thread
            loop.call_soon_threadsafe(pieces.put_nowait, (sample, text, start, end, finish))

        for group in groups:
            for sample in group:
                sample.on_piece = piece
        drawing = asyncio.ensure_future(self.draw_samples(request, name, groups, streamed=True))
        drawing.add_done_callback(lambda _: pieces.put_nowait(None))  # after every piece: they were queued first
        return pieces, drawing

    @staticmethod
    async def cancel(samples: list[Sample], drawing: asyncio.Future) -> None:
        """End a stream's samples (its client may have gone): their rows leave the batch at the next step."""
        for sample in samples:
            sample.cancelled = True
        await asyncio.gather(drawing, return_exceptions=True)

    # -- the other native routes: each returns the answer's JSON -------------------------------------------------

    def inputs(self, value: str | list[str], key: str) -> list[str]:
        texts = [value] if isinstance(value, str) else value
        if len(texts) > self.limits.max_inputs:
            most = self.limits.max_inputs
            raise RequestError(413, f"`{key}` holds {len(texts)} items, more than this server takes at once ({most}).")
        longest = max(len(text) for text in texts)
        if longest > self.limits.max_chars:
            raise RequestError(413, f"an item of `{key}` has {longest} characters, more than {self.limits.max_chars}.")
        return texts

    async def score(self, body: schemas.ScoreRequest) -> Any:
        name, model = self.model(body.model, "scores", "scoring text")
        named = {f"text {i}": text for i, text in enumerate(self.inputs(body.texts, "texts"), 1)}
        work = lambda: api.score_records(model, named, body.per_line, body.sort, body.unknown)  # noqa: E731
        return await self.compute(name, work)

    async def classify(self, body: schemas.ClassifyRequest) -> Any:
        name, model = self.model(body.model, "classify", "classifying")
        options = (body.top_k, body.unknown)
        return await self.merged(name, model, api.classify_records, self.inputs(body.inputs, "inputs"), options)

    async def tag(self, body: schemas.TagRequest) -> Any:
        name, model = self.model(body.model, "tag", "tagging")
        return await self.merged(name, model, api.tag_records, self.inputs(body.inputs, "inputs"), (body.unknown,))

    async def translate(self, body: schemas.TranslateRequest) -> Any:
        name, model = self.model(body.model, "translate", "translating")
        inputs = self.inputs(body.inputs, "inputs")
        if max(body.beam, body.n_best) > self.limits.max_beam:
            raise RequestError(400, f"`beam` and `n_best` may be at most {self.limits.max_beam} on this server.")
        options = (body.beam, body.n_best, body.length_penalty, body.unknown)
        return await self.merged(name, model, api.translate_records, inputs, options)

    # -- requests for one model that wait together are computed together ------------------------------------------

    async def merged(self, name: str, model: Model, records: Callable, inputs: list[str], options: tuple) -> list:
        """records(model, inputs, *options), one record per input, computed with the inputs of the requests for the
        same model, route and options that arrive while the model is busy: one call for all of them (32 one-word
        classify requests to an LSTM 2x256: 6.5 ms as one call, 31 ms one by one, Zen 4). Alone, a request is
        computed as before; merged, its figures may differ from that in their last bits (a larger matrix product)."""
        async with self.working():
            future = asyncio.get_running_loop().create_future()
            self.waiting.setdefault(name, []).append(((records, options), inputs, future))
            if name not in self.merging:
                self.merging[name] = asyncio.ensure_future(self._merge(name, model))
            return await future

    async def _merge(self, name: str, model: Model) -> None:
        """Compute the model's waiting requests, those alike together, until none waits."""
        try:
            while self.waiting.get(name):
                waiting, self.waiting[name] = self.waiting[name], []
                alike: dict[tuple, list] = {}
                for entry in waiting:
                    alike.setdefault(entry[0], []).append(entry)
                for (records, options), entries in alike.items():
                    while entries:  # at most --max-inputs inputs a call
                        count, size = 1, len(entries[0][1])
                        while count < len(entries) and size + len(entries[count][1]) <= self.limits.max_inputs:
                            size, count = size + len(entries[count][1]), count + 1
                        await self._compute_together(name, model, records, options, entries[:count])
                        entries = entries[count:]
        finally:
            del self.merging[name]

    async def _compute_together(
        self, name: str, model: Model, records: Callable, options: tuple, entries: list
    ) -> None:
        inputs = [text for _, texts, _ in entries for text in texts]
        try:
            results = await asyncio.to_thread(self._locked, name, lambda: records(model, inputs, *options))
        except RequestError as e:
            if len(entries) == 1:
                if not entries[0][2].done():
                    entries[0][2].set_exception(e)
                return
            middle = len(entries) // 2  # halves, until the request at fault is alone: only it is refused
            await self._compute_together(name, model, records, options, entries[:middle])
            await self._compute_together(name, model, records, options, entries[middle:])
            return
        except Exception as e:
            for _, _, future in entries:
                if not future.done():
                    future.set_exception(e)
            return
        self.metrics.inputs.labels(name).observe(len(inputs))
        start = 0
        for _, texts, future in entries:
            if not future.done():  # (cancelled: the server is stopping)
                future.set_result(results[start : start + len(texts)])
            start += len(texts)

    # -- the application ------------------------------------------------------------------------------------------

    def app(self) -> Any:
        """The ASGI application: FastAPI's routes inside the Gate, CORS and Front middleware."""
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from starlette.exceptions import HTTPException

        page = resources.files("charrnn.interfaces.serve").joinpath("page.html").read_text(encoding="utf-8")
        page = page.replace("{{version}}", __version__)
        app = FastAPI(
            title="charrnn serve",
            version=__version__,
            description="Character-level models over HTTP: charrnn's own routes and OpenAI's completions.",
            docs_url=None,
            redoc_url=None,
        )
        completions = Completions(self)

        def answer(value: Any, status: int = 200, headers: dict | None = None) -> JSONResponse:
            return JSONResponse(json_safe(value), status, headers)

        @app.get("/", include_in_schema=False)
        async def index() -> HTMLResponse:
            return HTMLResponse(page)

        @app.get("/health")
        async def health() -> dict:
            return {"status": "ok", "models": len(self.models), "version": __version__}

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            text, content_type = self.metrics.text()
            return Response(text, media_type=content_type)

        @app.get("/v1/models")
        async def models() -> dict:
            return {"object": "list", "data": [describe(name, model) for name, model in self.models.items()]}

        @app.get("/v1/models/{name}")
        async def one_model(name: str) -> dict:
            return describe(*self.model(name, "info", "describing"))  # an unknown name: the same 404 as elsewhere

        @app.post("/v1/sample")
        async def sample(body: schemas.SampleRequest, request: Request) -> Any:
            return await self.sample(request, body)

        @app.post("/v1/score")
        async def score(body: schemas.ScoreRequest) -> Any:
            return answer(await self.score(body))

        @app.post("/v1/classify")
        async def classify(body: schemas.ClassifyRequest) -> Any:
            return answer(await self.classify(body))

        @app.post("/v1/tag")
        async def tag(body: schemas.TagRequest) -> Any:
            return answer(await self.tag(body))

        @app.post("/v1/translate")
        async def translate(body: schemas.TranslateRequest) -> Any:
            return answer(await self.translate(body))

        @app.post("/v1/completions")
        async def complete(body: schemas.CompletionRequest, request: Request) -> Any:
            return await completions.create(request, body)

        @app.api_route("/v1/chat/completions", methods=["GET", "POST"], include_in_schema=False)
        async def chat() -> Any:
            raise RequestError(
                400,
                "charrnn's models complete text character by character and do not chat; send the text to continue "
                "as `prompt` to /v1/completions.",
                code="unsupported",
            )

        bodies = {route.path: route.body_field for route in app.routes if getattr(route, "body_field", None)}

        @app.exception_handler(RequestError)
        async def refused(request: Request, error: RequestError) -> Any:
            body = error_body(request.url.path, error.status, error.message, error.param, error.code)
            return answer(body, error.status, error.headers)

        @app.exception_handler(RequestValidationError)
        async def invalid(request: Request, error: RequestValidationError) -> Any:
            path = request.url.path
            field = bodies.get(path)
            schema = getattr(field, "type_", None) or getattr(getattr(field, "field_info", None), "annotation", None)
            first = min(error.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a misspelt key, first
            message, param = schemas.explain(first, path, schema)
            return answer(error_body(path, 400, message, param), 400)

        @app.exception_handler(HTTPException)
        async def http_error(request: Request, error: HTTPException) -> Any:
            message = {
                404: f"there is no {request.url.path}; see GET /v1/models and the page at /.",
                405: f"{request.method} is not what {request.url.path} takes.",
            }.get(error.status_code, str(error.detail))
            return answer(error_body(request.url.path, error.status_code, message), error.status_code)

        @app.exception_handler(Exception)
        async def crashed(request: Request, error: Exception) -> Any:
            message = f"the server failed on this request ({type(error).__name__}); it is still up."
            return answer(error_body(request.url.path, 500, message), 500)

        routes = {route.path for route in app.routes}
        wrapped: Any = Gate(app, self.token, self.limits.max_body)
        if self.cors_origins:
            from starlette.middleware.cors import CORSMiddleware

            wrapped = CORSMiddleware(
                wrapped,
                allow_origins=list(self.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
                expose_headers=["X-Request-Id"],
            )
        return Front(wrapped, self.metrics, routes, self.quiet)
