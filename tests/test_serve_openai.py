"""`charrnn serve` as the programs that talk to text-model servers use it: the official `openai` package against a
real server on a free 127.0.0.1 port; strict requests; the API fuzzed from its own schema with Schemathesis;
capacity (503), the --token flag, a client that goes away; metrics, CORS, request ids and the access log."""

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
from conftest import POND, Server, call, charrnn

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

SMALL = ["--layers", "1", "--hidden", "16", "--batch-size", "8", "--max-steps", "12", "--eval-every", "12"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("openai")
    (folder / "pond.txt").write_text(POND.read_text(encoding="utf-8")[:20000], encoding="utf-8")
    charrnn("train", "pond.txt", *SMALL, "--run-dir", "runs/pond", cwd=folder, check=True)
    return folder


@pytest.fixture(scope="module")
def server(runs):
    with Server(runs, "--run-dir", "runs/pond", "--max-length", 100_000) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def sampled(runs: Path, length: int, seed: int, prime: str = "") -> str:
    """What `charrnn sample` prints (without the line break it ends with)."""
    args = ["--len", length, "--seed", seed] + (["--prime", prime] if prime else [])
    return charrnn("sample", "--run-dir", "runs/pond", *args, cwd=runs, check=True).stdout.removesuffix("\n")


def test_the_openai_client_lists_the_models_and_completes(client, runs):
    assert [m.id for m in client.models.list()] == ["pond"]
    assert client.models.retrieve("pond").owned_by == "charrnn"
    done = client.completions.create(model="pond", prompt="The pond", max_tokens=80, seed=3, temperature=1.0)
    assert done.object == "text_completion" and done.model == "pond" and done.id.startswith("cmpl-")
    (choice,) = done.choices
    assert choice.text == sampled(runs, 80, 3, "The pond").removeprefix("The pond")  # a character is a token
    assert choice.finish_reason == "length" and choice.index == 0 and choice.logprobs is None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (8, 80, 88)


def test_a_streamed_completion_arrives_in_chunks_that_make_the_same_text(client):
    whole = client.completions.create(model="pond", prompt="A", max_tokens=20_000, seed=5).choices[0].text
    chunks = list(client.completions.create(model="pond", prompt="A", max_tokens=20_000, seed=5, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole
    assert len([c for c in chunks if c.choices[0].text]) > 5  # in pieces as drawn (those waiting merged in one)
    assert [c.choices[0].finish_reason for c in chunks][-1] == "length"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_n_choices_of_each_prompt_are_what_their_seeds_give_alone(client, runs):
    done = client.completions.create(model="pond", prompt=["The ", "A "], n=2, max_tokens=40, seed=7)
    assert [c.index for c in done.choices] == [0, 1, 2, 3]
    for choice in done.choices:
        prompt = "The " if choice.index < 2 else "A "
        assert choice.text == sampled(runs, 40, 7 + choice.index, prompt).removeprefix(prompt)
    assert done.usage.prompt_tokens == 6 and done.usage.completion_tokens == 160


def test_stop_strings_end_a_choice_and_are_left_out(client):
    free = client.completions.create(model="pond", prompt="The ", max_tokens=300, seed=2).choices[0].text
    stops = [free[50:52], "zq"]
    first = free.index(stops[0])
    done = client.completions.create(model="pond", prompt="The ", max_tokens=300, seed=2, stop=stops)
    assert done.choices[0].text == free[:first] and done.choices[0].finish_reason == "stop"
    assert done.usage.completion_tokens == first + 2  # the stop string was drawn, though left out of the text
    streamed = client.completions.create(model="pond", prompt="The ", max_tokens=300, seed=2, stop=stops, stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks) == free[:first] and chunks[-1].choices[0].finish_reason == "stop"
    one = client.completions.create(model="pond", prompt="The ", max_tokens=300, seed=2, stop=stops[0])
    assert one.choices[0].text == free[:first]


def test_echo_and_logprobs(client):
    done = client.completions.create(model="pond", prompt="The ", max_tokens=30, seed=4, echo=True, logprobs=3)
    choice = choice_of = done.choices[0]
    assert choice.text.startswith("The ") and len(choice.text) == 34
    lp = choice_of.logprobs
    assert "".join(lp.tokens) == choice.text and lp.text_offset == list(range(34))
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:]) and all(len(t) == 3 for t in lp.top_logprobs[1:])
    for token, value, top in zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:], strict=True):
        assert value <= max(top.values()) + 1e-12 and (token not in top or top[token] == pytest.approx(value))
    # max_tokens 0 with echo scores the prompt: the sum of its log-probabilities
    scored = client.completions.create(model="pond", prompt="The pond", max_tokens=0, echo=True, logprobs=0)
    assert scored.choices[0].text == "The pond" and len(scored.choices[0].logprobs.token_logprobs) == 8
    streamed = list(
        client.completions.create(
            model="pond", prompt="The ", max_tokens=30, seed=4, echo=True, stream=True, logprobs=1
        )
    )
    assert "".join(c.choices[0].text for c in streamed) == choice.text
    pieces = [c.choices[0].logprobs for c in streamed if c.choices[0].text]
    assert [o for p in pieces for o in p.text_offset] == list(range(34))  # offsets run on across the chunks
    assert [t for p in pieces for t in p.token_logprobs] == lp.token_logprobs
    plain = client.completions.create(model="pond", prompt="The ", max_tokens=30, seed=4, logprobs=1).choices[0]
    assert plain.logprobs.text_offset == list(range(30)) and plain.logprobs.token_logprobs == lp.token_logprobs[4:]


def test_what_clients_send_by_default_and_openais_extras(client):
    # neutral values of options charrnn does not do pass, as some client libraries always send them
    neutral = {"frequency_penalty": 0, "presence_penalty": 0.0, "best_of": 1, "logit_bias": {}, "suffix": None}
    done = client.completions.create(model="pond", prompt="The ", max_tokens=10, seed=3, **neutral)
    assert (
        done.choices[0].text
        == client.completions.create(model="pond", prompt="The ", max_tokens=10, seed=3).choices[0].text
    )
    chunks = list(
        client.completions.create(
            model="pond", prompt="A", max_tokens=30, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 30
    skipped = client.completions.create(
        model="pond", prompt="ThЖe ", max_tokens=10, seed=3, extra_body={"unknown": "skip"}
    )
    assert (
        skipped.choices[0].text
        == client.completions.create(model="pond", prompt="The ", max_tokens=10, seed=3).choices[0].text
    )
    # a stop string written on the last character allowed still ends the choice, and is left out
    free = client.completions.create(model="pond", prompt="The ", max_tokens=60, seed=9).choices[0].text
    last = client.completions.create(model="pond", prompt="The ", max_tokens=60, seed=9, stop=free[-2:])
    assert last.choices[0].finish_reason == "stop" and free.startswith(last.choices[0].text)
    assert len(last.choices[0].text) <= 58


def test_a_bad_request_raises_the_sdks_typed_error_with_our_sentence(client):
    with pytest.raises(openai.BadRequestError, match=r"`max_tokens` must be >= 0 \(got -1\)") as caught:
        client.completions.create(model="pond", prompt="x", max_tokens=-1)
    assert caught.value.body["param"] == "max_tokens" and caught.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="`prime` is not a key of /v1/completions; did you mean `prompt`"):
        client.completions.create(model="pond", prompt="x", extra_body={"prime": "x"})
    with pytest.raises(openai.BadRequestError, match="`frequency_penalty` is an OpenAI option charrnn does not"):
        client.completions.create(model="pond", prompt="x", frequency_penalty=0.5)
    with pytest.raises(openai.BadRequestError, match="never saw"):
        client.completions.create(model="pond", prompt="Жж")
    with pytest.raises(openai.BadRequestError, match=r"`stop` must be a string or a list of up to 4 strings"):
        client.completions.create(model="pond", prompt="x", stop=["a", "b", "c", "d", "e"])
    with pytest.raises(openai.BadRequestError, match=r"`prompt\[1\]` has 1 character the model never saw"):
        client.completions.create(model="pond", prompt=["The", "Жe"])
    with pytest.raises(openai.BadRequestError, match="`x` is not a key of /v1/completions's `stream_options`"):
        client.completions.create(model="pond", prompt="x", stream=True, stream_options={"include_usage": True, "x": 1})
    with pytest.raises(openai.BadRequestError, match="`echo` with `logprobs` scores every prompt character for each"):
        client.completions.create(model="pond", prompt="a" * 7000, n=3, max_tokens=0, echo=True, logprobs=1)
    with pytest.raises(openai.NotFoundError, match='no model is served as "gpt-4"'):
        client.completions.create(model="gpt-4", prompt="x")
    with pytest.raises(openai.BadRequestError, match="complete text character by character and do not chat"):
        client.chat.completions.create(model="pond", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        (
            "/v1/sample",
            {"prompt": "The ", "max_tokens": 50},
            "`prompt` is not a key of /v1/sample; did you mean `prime`?",
        ),
        ("/v1/sample", {"lenght": 50}, "`lenght` is not a key of /v1/sample; did you mean `length`?"),
        ("/v1/sample", {"length": 5.0}, "`length` must be a whole number (got 5.0)"),
        ("/v1/sample", {"seed": "1"}, '`seed` must be a whole number (got "1")'),
        ("/v1/sample", {"top_p": 0}, "`top_p` must be > 0 (got 0)"),
        ("/v1/sample", {"stream": 1}, "`stream` must be true or false (got 1)"),
        ("/v1/sample", {"unknown": "drop"}, "`unknown` must be 'error' or 'skip' (got \"drop\")"),
        ("/v1/completions", {"prompt": 3}, "`prompt` must be a string or a non-empty list of strings (got 3)"),
        ("/v1/completions", {"length": 3}, "`length` is not a key of /v1/completions; did you mean `max_tokens`?"),
        ("/v1/completions", {"n": 0}, "`n` must be >= 1 (got 0)"),
        ("/v1/score", {"text": "abc"}, "`text` is not a key of /v1/score; did you mean `texts`?"),
    ],
)
def test_every_key_is_checked_and_an_unknown_one_is_named(server, path, body, says):
    status, answer = call(server.url + path, body)
    message = answer["error"]["message"] if path == "/v1/completions" else answer["error"]
    assert status == 400 and says in message and "\n" not in message, message


def test_the_api_fuzzed_from_its_own_schema_never_fails_and_answers_json(server):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    seen: dict[int, int] = {}
    for operation in schema.get_all_operations():
        operation = operation.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case) -> None:
            response = case.call(timeout=30)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case.path, case.body, response.text)
            if response.status_code >= 400:
                error = response.json()["error"]
                assert isinstance(error, dict | str)

        check()
    assert seen.get(200, 0) > 10 and any(400 <= status < 500 for status in seen), seen
    assert call(server.url + "/health")[0] == 200


def first_event(url: str, body: dict) -> tuple[socket.socket, bytes]:
    """Open a streamed request by hand and read until its first event: the request is being computed."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    payload = json.dumps(body).encode()
    head = f"POST /v1/sample HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
    connection.sendall(head + payload)
    received = b""
    while b"data: " not in received:
        received += connection.recv(4096)
    return connection, received


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_full_server_answers_503_and_a_client_that_goes_away_frees_its_row(runs):
    with Server(runs, "--run-dir", "runs/pond", "--workers", "1", "--queue", "0", "--max-length", "10000000") as one:
        connection, _ = first_event(one.url, {"length": 10_000_000, "stream": True})
        try:
            request = urllib.request.Request(one.url + "/v1/completions", data=b'{"prompt": "a", "max_tokens": 5}')
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"
            assert "busy" in json.loads(refused.value.read())["error"]["message"]
        finally:
            connection.close()  # the streaming client goes away
        assert answered_soon(one.url, {"length": 10}) == 200
        # a client of a non-streamed sample that goes away frees its place and row too
        connection = socket.create_connection(("127.0.0.1", one.port), timeout=30)
        payload = b'{"length": 10000000}'
        connection.sendall(
            b"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        deadline = time.monotonic() + 30
        while metric(one.url, "charrnn_characters_generated_total") < 1000:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        connection.close()
        assert answered_soon(one.url, {"length": 10}) == 200
        drawn = metric(one.url, "charrnn_characters_generated_total")
        time.sleep(0.3)
        assert metric(one.url, "charrnn_characters_generated_total") == drawn  # no row is drawing any more
        log = one.log()
        assert '"POST /v1/sample" 499' in log  # logged as nginx does: the client closed the request
        assert "socket.send() raised exception" not in log  # no writes piled up for the stream that went away


def answered_soon(url: str, body: dict) -> int:
    """The status of the first request not refused as busy within 10 s (a freed place takes a step to show)."""
    deadline = time.monotonic() + 10
    while True:
        status, _ = call(url + "/v1/sample", body)
        if status != 503 or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_a_body_over_the_limit_is_413_whether_it_says_its_length_or_not(server):
    body = json.dumps({"prompt": "a" * 70_000}).encode()
    assert call(server.url + "/v1/completions", raw=body)[0] == 413
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:  # chunked: no Content-Length
        connection.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 8192):
            piece = body[start : start + 8192]
            connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        connection.sendall(b"0\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}}"):  # the headers, then the JSON error
            answer += connection.recv(65536)
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "over this server's limit of 65536 bytes" in answer


def test_the_token_flag_guards_every_route_the_page_and_the_metrics(runs):
    with Server(runs, "--run-dir", "runs/pond", "--token", "s3cret", "--host", "0.0.0.0") as guarded:
        for path in ("/", "/health", "/metrics", "/openapi.json", "/v1/models"):
            status, _ = call_raw(guarded.url + path)
            assert status == 401, path
        status, headers = call_raw(guarded.url + "/")
        assert headers["WWW-Authenticate"].startswith("Basic")  # a browser asks for the token itself
        for path in ("/v1/sample", "/v1/completions", "/v1/score"):
            assert call(guarded.url + path, {})[0] == 401, path
        bearer = {"Authorization": "Bearer s3cret"}
        assert call_raw(guarded.url + "/metrics", bearer)[0] == 200
        assert call_raw(guarded.url + "/", {"Authorization": "Basic " + "dXNlcjpzM2NyZXQ="})[0] == 200  # user:s3cret
        assert call_raw(guarded.url + "/", {"Authorization": "Basic " + "dXNlcjp3cm9uZw=="})[0] == 401  # user:wrong
        client = openai.OpenAI(base_url=guarded.url + "/v1", api_key="s3cret", max_retries=0)
        assert client.completions.create(model="pond", prompt="a", max_tokens=5).choices[0].finish_reason == "length"
        with pytest.raises(openai.AuthenticationError, match="needs the header Authorization"):
            openai.OpenAI(base_url=guarded.url + "/v1", api_key="wrong", max_retries=0).models.list()


def call_raw(url: str, headers: dict | None = None) -> tuple[int, Message]:
    """(status, headers: read case-insensitively) of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


def test_metrics_count_requests_batches_and_characters(runs):
    with Server(runs, "--run-dir", "runs/pond", "--quiet") as server:  # its own: no other request's rows in its batch
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)
        arguments = {"model": "pond", "prompt": "", "max_tokens": 3000}  # long enough for all eight to overlap
        threads = [threading.Thread(target=client.completions.create, kwargs=arguments) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        text = urllib.request.urlopen(server.url + "/metrics", timeout=10).read().decode()
        assert re.search(r'charrnn_requests_total\{route="/v1/completions",status="200"\} 8\.0', text)
        assert 'charrnn_request_seconds_bucket{le="0.005",route="/v1/completions"}' in text
        assert "charrnn_requests_in_flight 1.0" in text and "charrnn_requests_queued 0.0" in text  # /metrics itself
        rows, steps = (metric(server.url, f'charrnn_batch_rows_{part}{{model="pond"}}') for part in ("sum", "count"))
        assert rows == 8 * 3000 and rows / steps > 2  # concurrent completions were drawn as one batch
        assert metric(server.url, 'charrnn_characters_generated_total{model="pond"}') == rows


def test_request_ids_and_the_access_log(runs):
    with Server(runs, "--run-dir", "runs/pond") as logged:
        given = urllib.request.Request(logged.url + "/health", headers={"X-Request-Id": "abc-123"})
        with urllib.request.urlopen(given, timeout=10) as response:
            assert response.headers["X-Request-Id"] == "abc-123"
        with urllib.request.urlopen(logged.url + "/health", timeout=10) as response:
            made = response.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        call(logged.url + "/v1/sample", {"lenght": 3})
        time.sleep(0.2)
        lines = logged.log().splitlines()
        assert any(re.fullmatch(r'127\.0\.0\.1 "GET /health" 200 [\d.]+ms id=abc-123', line) for line in lines)
        assert any(f"id={made}" in line for line in lines)
        assert any('"POST /v1/sample" 400' in line for line in lines)
    with Server(runs, "--run-dir", "runs/pond", "--quiet") as quiet:
        call(quiet.url + "/health")
        time.sleep(0.2)
        assert "GET /health" not in quiet.log()


def test_cors_only_for_the_origins_given(runs, server):
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    assert "Access-Control-Allow-Origin" not in call_raw(server.url + "/health", preflight)[1]
    with Server(runs, "--run-dir", "runs/pond", "--cors-origin", "https://example.org") as open_to:
        request = urllib.request.Request(open_to.url + "/v1/completions", headers=preflight, method="OPTIONS")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "https://example.org"
        status, headers = call_raw(open_to.url + "/health", {"Origin": "https://example.org"})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://example.org"
        assert "X-Request-Id" in headers["Access-Control-Expose-Headers"]
        other = call_raw(open_to.url + "/health", {"Origin": "https://elsewhere.example"})[1]
        assert "Access-Control-Allow-Origin" not in other
