"""`charrnn serve`: trained models behind an HTTP API and a page to try them, safe to leave running.

    GET  /                     the playground page (one self-contained file: no fetch leaves the server)
    GET  /health               {"status": "ok", "models": N, "version": ...}
    GET  /metrics              Prometheus' text format
    GET  /openapi.json         every route's request schema
    GET  /v1/models            OpenAI's list; each entry's "charrnn" holds task, cell, sizes, outputs, ...
    POST /v1/completions       OpenAI's completions (a token is a character): prompt, max_tokens, n, stop, stream, ...
    POST /v1/sample            {model, prime, length, temperature, top_k, top_p, seed, stop, stream}
    POST /v1/score             {model, texts: [...], per_line, sort}
    POST /v1/classify          {model, inputs: [...], top_k}
    POST /v1/tag               {model, inputs: [...]}
    POST /v1/translate         {model, inputs: [...], beam, n_best, length_penalty}

charrnn's own routes answer what the command line's `--json` prints for the same options (a sample: the text
`charrnn sample` prints; with "stream": true, server-sent events of its pieces); their mistakes are {"error":
sentence}, OpenAI's routes' are OpenAI's error object. An unknown key is refused by name. FastAPI, uvicorn and
prometheus-client are the optional extra `charrnn[serve]`, imported only when serving.

    limits.py       what a request may ask; the refusal          schemas.py      each route's request, checked
    app.py          the routes, admission, sampling              completions.py  OpenAI's completions
    operations.py   request id, access log, metrics, token       events.py       server-sent events
    runner.py       the models to serve, uvicorn
"""

from .limits import Limits, RequestError
from .runner import TOKEN_ENV, is_loopback, load_models, need_server, serve

__all__ = ["TOKEN_ENV", "Limits", "RequestError", "is_loopback", "load_models", "need_server", "serve"]
