"""What wraps every request, whatever its route: the request id and the access log, the Prometheus metrics, the
token, the body's size limit, and the shape of an error (OpenAI's on its routes, charrnn's own elsewhere).

Front (request id, log line, metrics)  ->  CORS (only with --cors-origin)  ->  Gate (token, body size)  ->  routes
"""

import base64
import binascii
import hmac
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

OPENAI_ROUTES = ("/v1/completions", "/v1/chat/completions", "/v1/models")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def speaks_openai(path: str) -> bool:
    return path in OPENAI_ROUTES or path.startswith("/v1/models/")


def error_body(path: str, status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    """An error as the route's clients read it: OpenAI's {"error": {message, type, param, code}} on its routes (its
    SDK raises its typed exception with our sentence), {"error": sentence} on charrnn's own."""
    if not speaks_openai(path):
        return {"error": message}
    kind = "authentication_error" if status == 401 else "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # the buckets of the batch histograms: rows, or inputs, a call


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (GET /metrics)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "charrnn_requests", "Requests answered, by route and status.", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "charrnn_request_seconds",
            "Time from a request's arrival to the end of its answer, by route.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.in_flight = Gauge("charrnn_requests_in_flight", "Requests being answered now.", registry=registry)
        self.queued = Gauge("charrnn_requests_queued", "Requests waiting for a worker.", registry=registry)
        self.batch = Histogram(
            "charrnn_batch_rows",
            "Streams advanced together by each batched sampling step, by model.",
            ["model"],
            buckets=BATCH_SIZES,
            registry=registry,
        )
        self.inputs = Histogram(
            "charrnn_batch_inputs",
            "Inputs computed by each call of classify, tag or translate (requests that wait together), by model.",
            ["model"],
            buckets=BATCH_SIZES,
            registry=registry,
        )
        self.characters = Counter(
            "charrnn_characters_generated", "Characters drawn by sampling, by model.", ["model"], registry=registry
        )

    def stepper(self, model: str) -> Callable[[int], None]:
        """What a model's batcher calls at each step with the rows it advanced."""
        batch, characters = self.batch.labels(model), self.characters.labels(model)

        def step(rows: int) -> None:
            batch.observe(rows)
            characters.inc(rows)

        return step

    def text(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


async def send_json(send: Any, status: int, body: dict, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Answer with `body` as JSON, from middleware (before any route)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": data})


class Front:
    """ASGI middleware, outermost: gives each request an id (its X-Request-Id if it sent a sane one, else a new
    one) returned in X-Request-Id, counts it in the metrics, and writes one access-log line on stderr when it ends
    (unless quiet): `127.0.0.1 "POST /v1/completions" 200 41.2ms id=...`."""

    def __init__(self, app: Any, metrics: Metrics, routes: set[str], quiet: bool) -> None:
        self.app, self.metrics, self.routes, self.quiet = app, metrics, routes, quiet

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"]
        route = path if path in self.routes else "/v1/models/{id}" if path.startswith("/v1/models/") else "other"
        started, status = time.perf_counter(), [500]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(seconds)
            if not self.quiet:
                client = (scope.get("client") or ("-",))[0]
                line = f'{client} "{scope["method"]} {path}" {status[0]} {seconds * 1000:.1f}ms id={request_id}'
                print(line, file=sys.stderr, flush=True)


class Gate:
    """ASGI middleware, inside CORS: the token (compared in constant time) on every route, the page and /metrics
    included; the body size limit, before reading a byte where Content-Length says it
    is over, else as it arrives; and every POST body read as JSON whatever its Content-Type (curl -d says form)."""

    def __init__(self, app: Any, token: str | None, max_body: int) -> None:
        self.app, self.max_body = app, max_body
        self.token = None if token is None else token.encode()

    def allowed(self, authorization: bytes) -> bool:
        """`Bearer <token>`, or from a browser `Basic` with the token as the password (any user name): a browser
        asks for that itself when the page answers 401, then sends it with the page's own calls."""
        scheme, _, value = authorization.partition(b" ")
        if scheme.lower() == b"basic":
            try:
                value = base64.b64decode(value, validate=True).partition(b":")[2]
            except binascii.Error:
                return False
        elif scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(value, self.token)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers, path = dict(scope["headers"]), scope["path"]
        if self.token is not None and not self.allowed(headers.get(b"authorization", b"")):
            message = "this server needs the header Authorization: Bearer <token> (--token)."
            body = error_body(path, 401, message, code="invalid_api_key")
            challenge = b'Basic realm="charrnn serve"' if path == "/" else b"Bearer"
            return await send_json(send, 401, body, ((b"www-authenticate", challenge),))
        declared = headers.get(b"content-length", b"")
        too_large = f"the request body is over this server's limit of {self.max_body} bytes."
        if declared.isdigit() and int(declared) > self.max_body:
            return await send_json(send, 413, error_body(path, 413, too_large))
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        # The whole body is read here, up to the limit: a body sent in chunks with no Content-Length is refused with
        # the same 413 before the routes see any of it.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await send_json(send, 413, error_body(path, 413, too_large))
        kept = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        scope = {**scope, "headers": [*kept, (b"content-type", b"application/json")]}
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                return await receive()  # what comes after the body: the disconnect
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
