"""`charrnn serve`: trained models behind an HTTP API and a page to try them, safe to leave running.

    GET  /                the playground page (one self-contained file: no fetch leaves the server)
    GET  /health          {"status": "ok", "models": N}
    GET  /v1/models       each model: name, task, cell, sizes, vocabulary size, outputs (labels, ...)
    POST /v1/sample       {model, prime, length, temperature, top_k, top_p, seed, stop, stream}
    POST /v1/score        {model, texts: [...], per_line, sort}
    POST /v1/classify     {model, inputs: [...], top_k}
    POST /v1/tag          {model, inputs: [...]}
    POST /v1/translate    {model, inputs: [...], beam, n_best, length_penalty}

Every answer is what the command line's `--json` prints for the same options (a sample: the text `charrnn sample`
prints; with "stream": true, server-sent events of its pieces). Every mistake is a JSON object {"error": sentence}
with a 4xx status. Inference runs in worker threads, one request at a time per model (a network's buffers are its
own); `workers` requests compute at once and `queue` more may wait, and a request beyond that is answered 503 with
Retry-After at once, so a slow request never stalls the others or the event loop. Starlette and uvicorn are the
optional extra `charrnn[serve]`, imported only here.
"""

import asyncio
import hmac
import ipaddress
import json
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from charrnn.errors import CharRNNError
from charrnn.interfaces import api
from charrnn.tasks.model import Model
from charrnn.training.checkpoint import find_checkpoint, open_model
from charrnn.training.run import json_safe
from charrnn.version import __version__

TOKEN_ENV = "CHARRNN_TOKEN"


@dataclass(frozen=True)
class Limits:
    """What one request may ask, and how many may be in the server at once (each a flag of `charrnn serve`)."""

    max_body: int = 64 * 1024  # bytes of a request body
    max_length: int = 5000  # characters a sample may draw
    max_inputs: int = 256  # texts or inputs in one request
    max_chars: int = 20_000  # characters of a prime, a text or an input
    max_beam: int = 16  # beam width (and n_best)
    workers: int = 2  # requests computed at once
    queue: int = 64  # requests waiting for a worker beyond those


class RequestError(Exception):
    """A request the server refuses: its HTTP status and one sentence saying why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def need_server() -> tuple[Any, Any]:
    """Starlette and uvicorn, or the sentence that says how to install them."""
    try:
        import starlette
        import uvicorn
    except ImportError:
        raise CharRNNError(
            "charrnn serve needs Starlette and uvicorn; install them with: pip install 'charrnn[serve]'"
        ) from None
    return starlette, uvicorn


def load_models(run_dirs: list[Path], checkpoints: list[Path]) -> dict[str, Model]:
    """The models to serve by name: a run folder's name (a checkpoint's: its folder's, or its own stem where that
    is taken), each a name of its own."""
    found = [(Path(d).name, find_checkpoint(run_dir=Path(d))) for d in run_dirs]
    for path in map(Path, checkpoints):
        name = path.parent.name if path.name == "last.npz" and path.parent.name else path.stem
        found.append((name, find_checkpoint(checkpoint=path)))
    if not found:
        raise CharRNNError(
            "give the models to serve with --run-dir FOLDER or --checkpoint FILE (several may be given)."
        )
    models: dict[str, Model] = {}
    for name, path in found:
        if name in models:
            raise CharRNNError(
                f"two models would be served as {name!r}; serve runs whose folders have different names."
            )
        models[name] = open_model(path)
    return models


LISTED = ("task", "cell", "layers", "hidden", "parameters", "vocab_size", "outputs", "step", "val_loss")


def describe(name: str, model: Model) -> dict[str, Any]:
    """A model as GET /v1/models lists it: part of what `charrnn info --json` prints, and what it is in words."""
    info = model.info
    listed = {key: info[key] for key in LISTED} | {key: info["config"][key] for key in ("bidirectional", "embed")}
    return {"name": name, "kind": model.kind, "outputs_name": model.outputs_name, **listed}


# -- reading a request ------------------------------------------------------------------------------------------


def _value(body: dict, key: str, kind: type | tuple, default: Any, what: str) -> Any:
    """body[key], which must be of `kind` (`what` says which in the error), else `default` when absent or null."""
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RequestError(400, f"`{key}` must be {what} (got {json.dumps(value)}).")
    if not isinstance(value, kind):
        raise RequestError(400, f"`{key}` must be {what} (got {json.dumps(value)[:60]}).")
    return value


def _texts(body: dict, key: str, limits: Limits) -> list[str]:
    """The list of strings body[key] (one string counts as a list of one), within the limits."""
    value = body.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RequestError(400, f"`{key}` must be a string or a non-empty list of strings.")
    if len(value) > limits.max_inputs:
        raise RequestError(
            413, f"`{key}` holds {len(value)} items, more than this server takes at once ({limits.max_inputs})."
        )
    longest = max(len(v) for v in value)
    if longest > limits.max_chars:
        raise RequestError(413, f"an item of `{key}` has {longest} characters, more than {limits.max_chars}.")
    return value


def _unknown(body: dict) -> str:
    """What to do with characters a model never saw (`unknown`, as --unknown)."""
    return _value(body, "unknown", str, "error", '"error" or "skip"')


def _flags_to_keys(message: str) -> str:
    """A model's sentence about a command-line flag (--top-k) in the request's terms (`top_k`)."""
    message = message.replace("pass --unknown skip", 'send "unknown": "skip"')
    return re.sub(r"--([a-z][a-z-]*)", lambda m: f"`{m.group(1).replace('-', '_')}`", message).replace(
        "`len`", "`length`"
    )


class Server:
    """The models and what the API does with them; `app()` makes the Starlette application."""

    def __init__(self, models: dict[str, Model], limits: Limits, token: str | None = None) -> None:
        self.models, self.limits, self.token = models, limits, token
        self.locks = {name: threading.Lock() for name in models}
        self.admitted = 0  # requests computing or waiting for a worker
        self.slots = asyncio.Semaphore(limits.workers)  # a worker each (it binds to the loop that first waits on it)

    def model(self, body: dict, verb: str, action: str) -> tuple[str, Model]:
        name = body.get("model")
        if name is None and len(self.models) == 1:
            name = next(iter(self.models))
        if not isinstance(name, str) or name not in self.models:
            known = ", ".join(self.models)
            raise RequestError(404, f"no model is served as {json.dumps(name)}; the models are {known}.")
        model = self.models[name]
        if not hasattr(model, verb):
            raise RequestError(400, f"{action} needs another kind of model, but {name!r} is {model.kind}.")
        return name, model

    # -- the endpoints: each takes the parsed body and returns what is sent as JSON ---------------------------

    def sample_options(self, body: dict) -> tuple[str, Model, dict[str, Any]]:
        """The model and `LanguageModel.generate`'s options of a sample request, every one checked."""
        name, model = self.model(body, "sample", "sampling")
        length = _value(body, "length", int, 500, "a whole number")
        if length > self.limits.max_length:
            raise RequestError(
                400, f"`length` {length} is more than this server draws ({self.limits.max_length}); ask for fewer."
            )
        prime = _value(body, "prime", str, "", "a string")
        if len(prime) > self.limits.max_chars:
            raise RequestError(413, f"`prime` has {len(prime)} characters, more than {self.limits.max_chars}.")
        options = {
            "length": length,
            "prime": prime,
            "temperature": _value(body, "temperature", (int, float), 1.0, "a number"),
            "top_k": _value(body, "top_k", int, 0, "a whole number"),
            "top_p": _value(body, "top_p", (int, float), 1.0, "a number"),
            "seed": _value(body, "seed", int, None, "a whole number"),
            "stop": _value(body, "stop", str, "", "a string"),
            "unknown": _unknown(body),
        }
        try:
            model.generate(**options)  # checks the options; it draws nothing until iterated
        except CharRNNError as e:
            raise RequestError(400, _flags_to_keys(str(e))) from None
        return name, model, options

    def sample(self, body: dict) -> tuple[str, Callable[[], Any]]:
        name, model, options = self.sample_options(body)
        return name, lambda: {"model": name, "text": model.sample(**options)}

    def score(self, body: dict) -> tuple[str, Callable[[], Any]]:
        name, model = self.model(body, "scores", "scoring text")
        texts = _texts(body, "texts", self.limits)
        per_line = _value(body, "per_line", bool, False, "true or false")
        order = _value(body, "sort", str, "none", '"none", "asc" or "desc"')
        unknown = _unknown(body)
        named = {f"text {i}": text for i, text in enumerate(texts, 1)}
        return name, lambda: api.score_records(model, named, per_line, order, unknown)

    def classify(self, body: dict) -> tuple[str, Callable[[], Any]]:
        name, model = self.model(body, "classify", "classifying")
        inputs = _texts(body, "inputs", self.limits)
        top_k = _value(body, "top_k", int, 1, "a whole number")
        unknown = _unknown(body)
        return name, lambda: api.classify_records(model, inputs, top_k, unknown)

    def tag(self, body: dict) -> tuple[str, Callable[[], Any]]:
        name, model = self.model(body, "tag", "tagging")
        inputs = _texts(body, "inputs", self.limits)
        unknown = _unknown(body)
        return name, lambda: api.tag_records(model, inputs, unknown)

    def translate(self, body: dict) -> tuple[str, Callable[[], Any]]:
        name, model = self.model(body, "translate", "translating")
        inputs = _texts(body, "inputs", self.limits)
        beam = _value(body, "beam", int, 1, "a whole number")
        n_best = _value(body, "n_best", int, 1, "a whole number")
        if max(beam, n_best) > self.limits.max_beam:
            raise RequestError(400, f"`beam` and `n_best` may be at most {self.limits.max_beam} on this server.")
        penalty = _value(body, "length_penalty", (int, float), 1.0, "a number")
        unknown = _unknown(body)
        return name, lambda: api.translate_records(model, inputs, beam, n_best, penalty, unknown)

    # -- running them ----------------------------------------------------------------------------------------

    def refuse_if_full(self) -> None:
        """A 503 at once when every worker and queue place is taken."""
        if self.admitted >= self.limits.workers + self.limits.queue:
            raise RequestError(
                503,
                "the server is busy (every worker and queue place is taken); retry in a moment.",
                {"Retry-After": "1"},
            )

    def admit(self) -> None:
        """Count a request in, or refuse it when the server is full."""
        self.refuse_if_full()
        self.admitted += 1

    async def compute(self, name: str, work: Callable[[], Any]) -> Any:
        """Run `work` in a worker thread, holding the model's lock, once a worker is free."""
        self.admit()
        try:
            async with self.slots:
                return await asyncio.to_thread(self._locked, name, work)
        finally:
            self.admitted -= 1

    def _locked(self, name: str, work: Callable[[], Any]) -> Any:
        with self.locks[name]:
            try:
                return work()
            except CharRNNError as e:
                raise RequestError(400, _flags_to_keys(str(e))) from None

    async def stream(self, name: str, model: Model, options: dict[str, Any]) -> AsyncIterator[str]:
        """Server-sent events of a sample: the prime, then a piece at a time as it is drawn, then "end"."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()

        def draw() -> None:
            try:
                with self.locks[name]:
                    pieces_of = model.generate(**options)
                    loop.call_soon_threadsafe(pieces.put_nowait, model.readable(options["prime"], options["unknown"]))
                    piece = ""
                    for ch in pieces_of:
                        if cancelled.is_set():
                            break
                        piece += ch
                        if len(piece) >= 8 or ch == "\n":
                            loop.call_soon_threadsafe(pieces.put_nowait, piece)
                            piece = ""
                    loop.call_soon_threadsafe(pieces.put_nowait, piece)
            finally:
                loop.call_soon_threadsafe(pieces.put_nowait, None)

        self.admit()
        try:
            async with self.slots:
                worker = loop.run_in_executor(None, draw)
                try:
                    while (piece := await pieces.get()) is not None:
                        if piece:
                            yield f"data: {json.dumps({'text': piece}, ensure_ascii=False)}\n\n"
                    yield "event: end\ndata: {}\n\n"
                finally:
                    cancelled.set()
                    await worker
        finally:
            self.admitted -= 1

    def app(self) -> Any:
        """The Starlette application."""
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
        from starlette.routing import Route

        page = resources.files("charrnn.interfaces").joinpath("serve.html").read_text(encoding="utf-8")
        page = page.replace("{{version}}", __version__)

        def answer(value: Any, status: int = 200, headers: dict | None = None) -> JSONResponse:
            return JSONResponse(json_safe(value), status, headers)

        async def read_body(request: Request) -> dict:
            too_large = RequestError(
                413, f"the request body is over this server's limit of {self.limits.max_body} bytes."
            )
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.limits.max_body:
                raise too_large  # before reading any of it
            raw = b""
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > self.limits.max_body:
                    raise too_large
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise RequestError(400, f"the request body is not valid JSON ({e}).") from None
            if not isinstance(body, dict):
                raise RequestError(400, 'the request body must be a JSON object, e.g. {"model": "NAME", ...}.')
            return body

        def endpoint(handler: Callable[[dict], tuple[str, Callable[[], Any]]]) -> Callable:
            async def run(request: Request) -> Any:
                body = await read_body(request)
                name, work = handler(body)
                return answer(await self.compute(name, work))

            return run

        async def sample(request: Request) -> Any:
            body = await read_body(request)
            if not _value(body, "stream", bool, False, "true or false"):
                name, work = self.sample(body)
                return answer(await self.compute(name, work))
            name, model, options = self.sample_options(body)
            self.refuse_if_full()  # now, before the stream's 200 (the stream counts itself in when it starts)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(self.stream(name, model, options), media_type="text/event-stream", headers=headers)

        async def health(request: Request) -> Any:
            return answer({"status": "ok", "models": len(self.models), "version": __version__})

        async def models(request: Request) -> Any:
            return answer({"models": [describe(name, model) for name, model in self.models.items()]})

        async def index(request: Request) -> Any:
            return HTMLResponse(page)

        async def refused(request: Request, error: RequestError) -> Any:
            return answer({"error": error.message}, error.status, error.headers)

        async def http_error(request: Request, error: HTTPException) -> Any:
            message = {
                404: f"there is no {request.url.path}; see GET /v1/models and the page at /.",
                405: f"{request.method} is not what {request.url.path} takes.",
            }
            return answer({"error": message.get(error.status_code, str(error.detail))}, error.status_code)

        async def crashed(request: Request, error: Exception) -> Any:
            return answer(
                {"error": f"the server failed on this request ({type(error).__name__}); it is still up."}, 500
            )

        routes = [
            Route("/", index),
            Route("/health", health),
            Route("/v1/models", models),
            Route("/v1/sample", sample, methods=["POST"]),
            Route("/v1/score", endpoint(self.score), methods=["POST"]),
            Route("/v1/classify", endpoint(self.classify), methods=["POST"]),
            Route("/v1/tag", endpoint(self.tag), methods=["POST"]),
            Route("/v1/translate", endpoint(self.translate), methods=["POST"]),
        ]
        handlers = {RequestError: refused, HTTPException: http_error, Exception: crashed}
        app = Starlette(routes=routes, exception_handlers=handlers)
        return app if self.token is None else _Guard(app, self.token)


class _Guard:
    """ASGI middleware: every HTTP request must carry `Authorization: Bearer <token>` (compared in constant time)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": "this server needs the header Authorization: Bearer <token> (--token)."})
                headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    models: dict[str, Model],
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    limits: Limits = Limits(),
    announce: Callable[[str], None] = print,
) -> None:
    """Serve `models` until Ctrl-C or SIGTERM, which stop taking requests, finish those in flight and return."""
    _, uvicorn = need_server()
    if not is_loopback(host) and not token:
        raise CharRNNError(
            f"--host {host} lets other machines reach the server; give it a --token (or {TOKEN_ENV}) that every "
            "request must send, or serve on 127.0.0.1."
        )
    app = Server(models, limits, token).app()
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10, limit_concurrency=None
    )
    server = uvicorn.Server(config)
    where = f"[{host}]" if ":" in host else host
    names = ", ".join(f"{name} ({model.task})" for name, model in models.items())
    announce(f"serving {names} at http://{where}:{port}/ (Ctrl-C stops)")
    # uvicorn drains on SIGINT/SIGTERM, then raises the signal again for the handlers it found: these take it, so
    # the command ends with exit code 0 instead of a KeyboardInterrupt or death by SIGTERM.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind
        if server.started:
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if server.started:
        announce("stopped")
    else:
        raise CharRNNError(
            f"could not listen on {host}:{port}; is another server using that port? Choose another --port."
        )
