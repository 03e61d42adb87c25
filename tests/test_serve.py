"""`charrnn serve` as a user runs it: a real server process on a free 127.0.0.1 port, spoken to over HTTP, stopped
whatever happens. Every endpoint against the command line's --json, streaming, every class of bad request, the
token, concurrent clients, shutdown, and the page in Chromium."""

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import POND, Server, call, charrnn, write_tsv

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SMALL = ["--layers", "1", "--hidden", "16", "--batch-size", "8", "--max-steps", "12", "--eval-every", "12"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A small model of every task, trained in a folder of their own."""
    folder = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcde"), rng.integers(3, 9))) for _ in range(300)]
    write_tsv(folder / "labels.tsv", [(w, "long" if len(w) > 5 else "short") for w in words])
    write_tsv(folder / "upper.tsv", [(w, w.upper()[0] + w[1:]) for w in words])
    write_tsv(folder / "reverse.tsv", [(w, w[::-1]) for w in words])
    (folder / "pond.txt").write_text(POND.read_text(encoding="utf-8")[:20000], encoding="utf-8")
    charrnn("train", "pond.txt", *SMALL, "--run-dir", "runs/pond", cwd=folder, check=True)
    charrnn("train", "labels.tsv", "--task", "classify", *SMALL, "--run-dir", "runs/labels", cwd=folder, check=True)
    charrnn("train", "upper.tsv", "--task", "tag", *SMALL, "--run-dir", "runs/upper", cwd=folder, check=True)
    charrnn("train", "reverse.tsv", "--task", "seq2seq", *SMALL, "--run-dir", "runs/reverse", cwd=folder, check=True)
    return folder


@pytest.fixture(scope="module")
def server(runs):
    names = ("pond", "labels", "upper", "reverse")
    running = Server(runs, *[f"--run-dir=runs/{name}" for name in names], "--max-length", 100_000)
    try:
        yield running
    finally:
        running.stop()


def test_health_and_the_models(server):
    assert call(server.url + "/health") == (
        200,
        {"status": "ok", "models": 4, "version": call(server.url + "/health")[1]["version"]},
    )
    status, body = call(server.url + "/v1/models")
    assert status == 200
    assert body["object"] == "list" and [m["object"] for m in body["data"]] == ["model"] * 4
    listed = {m["id"]: m["charrnn"] for m in body["data"]}
    assert {name: m["task"] for name, m in listed.items()} == {
        "pond": "lm",
        "labels": "classify",
        "upper": "tag",
        "reverse": "seq2seq",
    }
    assert listed["labels"]["outputs"] == ["long", "short"] and listed["pond"]["hidden"] == 16


def test_a_sample_is_what_charrnn_sample_prints(server, runs):
    options = {"prime": "MILLER:", "length": 150, "temperature": 0.8, "top_k": 10, "seed": 7}
    printed = charrnn(
        "sample",
        "--run-dir",
        "runs/pond",
        "--prime",
        "MILLER:",
        "--len",
        150,
        "--temperature",
        0.8,
        "--top-k",
        10,
        "--seed",
        7,
        cwd=runs,
        check=True,
    ).stdout
    status, body = call(server.url + "/v1/sample", {"model": "pond", **options})
    text = body["text"]
    assert status == 200 and (text if text.endswith("\n") else text + "\n") == printed  # the command ends the line


def test_a_streamed_sample_arrives_in_pieces_that_make_the_same_text(server):
    body = {"model": "pond", "prime": "PIP:", "length": 20_000, "seed": 3, "stream": True}  # long: drawn over time
    request = urllib.request.Request(server.url + "/v1/sample", data=json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = response.read().decode().split("\n\n")
    pieces = [json.loads(e[len("data: ") :])["text"] for e in events if e.startswith("data: ")]
    assert events[-2] == "event: end\ndata: {}" and len(pieces) > 5
    assert "".join(pieces) == call(server.url + "/v1/sample", {**body, "stream": False})[1]["text"]


def test_classify_tag_translate_and_score_answer_what_the_json_flags_print(server, runs):
    inputs = ["abcdeab", "abc", "ddd"]
    for endpoint, command, model, extra, flags in [
        ("classify", "classify", "labels", {"top_k": 2}, ["--top-k", 2]),
        ("tag", "tag", "upper", {}, []),
        ("translate", "translate", "reverse", {"beam": 3, "n_best": 2}, ["--beam", 3, "--n-best", 2]),
    ]:
        printed = charrnn(command, *inputs, "--run-dir", f"runs/{model}", *flags, "--json", cwd=runs, check=True).stdout
        assert call(server.url + f"/v1/{endpoint}", {"model": model, "inputs": inputs, **extra}) == (
            200,
            json.loads(printed),
        )
    (runs / "a.txt").write_text("The pond is green.", encoding="utf-8")
    printed = json.loads(charrnn("score", "a.txt", "--run-dir", "runs/pond", "--json", cwd=runs, check=True).stdout)
    status, body = call(server.url + "/v1/score", {"model": "pond", "texts": ["The pond is green."]})
    assert status == 200 and [{**r, "name": "a.txt"} for r in body] == printed


@pytest.mark.parametrize(
    ("path", "body", "raw", "status", "says"),
    [
        ("/v1/sample", None, b"{not json", 400, "not valid JSON"),
        ("/v1/sample", None, b"[1, 2]", 400, "must be a JSON object"),
        ("/v1/sample", {"model": "pond", "length": "long"}, None, 400, '`length` must be a whole number (got "long")'),
        ("/v1/sample", {"model": "pond", "temperature": True}, None, 400, "`temperature` must be a number"),
        ("/v1/sample", {"model": "pond", "top_k": -1}, None, 400, "`top_k` must be >= 0"),
        ("/v1/sample", {"model": "nobody"}, None, 404, 'no model is served as "nobody"'),
        ("/v1/sample", {"model": "labels"}, None, 400, "sampling needs another kind of model"),
        ("/v1/sample", {"model": "pond", "prime": "Жж"}, None, 400, "never saw"),
        ("/v1/sample", {"model": "pond", "length": 10**6}, None, 400, "more than this server draws (100000)"),
        ("/v1/score", {"model": "pond", "texts": ["The pond€"]}, None, 400, 'send "unknown": "skip"'),
        ("/v1/sample", {"model": "pond", "prompt": "The "}, None, 400, "`prompt` is not a key of /v1/sample; did you"),
        ("/v1/sample", {"model": "pond", "stop": ["a"] * 5}, None, 400, "`stop` must be a string or a list of up to 4"),
        ("/v1/classify", {"model": "labels", "inputs": []}, None, 400, "a non-empty list of strings"),
        ("/v1/classify", {"model": "labels", "inputs": ["abc", 3]}, None, 400, "a string or a non-empty list"),
        ("/v1/classify", {"model": "labels", "inputs": ["xyz"]}, None, 400, "never saw"),
        ("/v1/classify", {"model": "labels", "inputs": ["a"] * 1000}, None, 413, "more than this server takes"),
        ("/v1/translate", {"model": "reverse", "inputs": ["abc"], "beam": 99}, None, 400, "at most 16"),
        ("/v1/tag", None, b'{"model": "upper", "inputs": ["' + b"a" * 70_000 + b'"]}', 413, "over this server's limit"),
        ("/v1/nothing", {}, None, 404, "there is no /v1/nothing"),
    ],
)
def test_a_bad_request_is_a_json_sentence_and_the_server_stays_up(server, path, body, raw, status, says):
    got, answer = call(server.url + path, body, raw)
    assert got == status and says in answer["error"], answer
    assert "\n" not in answer["error"]
    assert call(server.url + "/health")[0] == 200


def test_a_get_where_a_post_is_wanted_is_405_in_json(server):
    try:
        urllib.request.urlopen(server.url + "/v1/classify", timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 405 and "GET is not what /v1/classify takes" in json.loads(e.read())["error"]
    else:
        raise AssertionError("GET /v1/classify was accepted")


def test_32_concurrent_clients_are_all_answered(runs):
    running = Server(runs, "--run-dir", "runs/pond", "--run-dir", "runs/labels", "--workers", "2", "--queue", "8")
    try:
        answers: list[int] = []
        retry_after = []

        def client(n: int) -> None:
            for _ in range(3):
                body = (
                    {"model": "pond", "length": 200, "seed": n}
                    if n % 2
                    else {"model": "labels", "inputs": ["abc"] * 50}
                )
                data = b'{"model": "labels", "inputs": [' if n % 4 == 0 else json.dumps(body).encode()  # malformed
                request = urllib.request.Request(running.url + ("/v1/sample" if n % 2 else "/v1/classify"), data=data)
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        answers.append(response.status)
                except urllib.error.HTTPError as e:
                    answers.append(e.code)
                    if e.code == 503:
                        retry_after.append(e.headers.get("Retry-After"))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(answers) == 96 and set(answers) <= {200, 400, 503}, answers
        assert 0 < answers.count(400) <= 24  # the malformed ones: refused in a sentence (or told to retry)
        assert answers.count(200) >= 10  # two workers and eight queue places: some wait, the rest are told to retry
        assert all(r == "1" for r in retry_after)
        assert call(running.url + "/health")[0] == 200
    finally:
        assert running.stop() == 0


def test_classify_requests_that_wait_together_are_computed_together(server, runs):
    words = ["abcdeab", "abc", "ddd", "eeeeee", "ab", "cadeb"] * 4
    alone = json.loads(charrnn("classify", *words, "--run-dir", "runs/labels", "--json", cwd=runs, check=True).stdout)
    answers: dict[int | str, tuple] = {}

    def ask(k: int) -> None:
        inputs = [words[k], "xyz"] if k == 4 else [words[k]]  # one request has a character the model never saw
        inputs = words[k : k + 2] if k % 2 else inputs  # some have two inputs
        answers[k] = call(server.url + "/v1/classify", {"model": "labels", "inputs": inputs})

    def batches() -> tuple[float, float]:
        text = urllib.request.urlopen(server.url + "/metrics", timeout=10).read().decode()
        return tuple(  # inputs, calls
            sum(
                float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"charrnn_batch_inputs_{part}")
            )
            for part in ("sum", "count")
        )

    before = batches()
    long_inputs = {"model": "labels", "inputs": ["abcde" * 400] * 30, "top_k": 2}  # 60 kB: within --max-body

    def keep_busy(n: int) -> None:
        answers[f"busy {n}"] = call(server.url + "/v1/classify", long_inputs)

    busy = [threading.Thread(target=keep_busy, args=(n,)) for n in range(3)]
    for thread in busy:
        thread.start()  # the model is busy: the requests below wait for it, together
    time.sleep(0.05)
    threads = [threading.Thread(target=ask, args=(k,)) for k in range(len(words))]
    for thread in threads:
        thread.start()
    for thread in [*threads, *busy]:
        thread.join()
    after = batches()
    assert [answers.pop(f"busy {n}")[0] for n in range(3)] == [200] * 3
    assert answers[4][0] == 400 and "never saw" in answers[4][1]["error"]  # only the request at fault
    for k, (status, records) in answers.items():
        if k != 4:
            asked = words[k : k + 2] if k % 2 else [words[k]]
            assert status == 200 and [r["input"] for r in records] == asked, (k, records)
            for record, expected in zip(records, alone[k : k + len(asked)], strict=True):
                assert [x["label"] for x in record["labels"]] == [x["label"] for x in expected["labels"]]
                assert record["labels"][0]["p"] == pytest.approx(expected["labels"][0]["p"], abs=1e-6)
    good = len(words) - 1  # one by one, the good requests would be as many calls (and the busy ones, one or more)
    assert after[1] - before[1] - 1 < good  # fewer: requests that waited together were computed together


def test_a_long_sample_does_not_stall_the_other_models(server):
    result = {}

    def slow() -> None:
        result["sample"] = call(server.url + "/v1/sample", {"model": "pond", "length": 100_000, "seed": 2})

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.2)
    answered = [call(server.url + "/v1/classify", {"model": "labels", "inputs": ["abc"]})[0] for _ in range(5)]
    answered.append(call(server.url + "/health")[0])
    still_drawing = worker.is_alive()
    worker.join(timeout=60)
    assert answered == [200] * 6 and result["sample"][0] == 200
    assert still_drawing  # the classifier and /health answered while the sample was being drawn


def test_the_token_is_needed_and_an_open_address_refuses_to_start_without_one(runs):
    running = Server(runs, "--run-dir", "runs/labels", env={"CHARRNN_TOKEN": "s3cret"})
    try:
        assert call(running.url + "/v1/models")[0] == 401
        assert call(running.url + "/v1/models", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(running.url + "/v1/models", headers={"Authorization": "Bearer s3cret"})[0] == 200
    finally:
        running.stop()
    refused = charrnn("serve", "--run-dir", "runs/labels", "--host", "0.0.0.0", cwd=runs)
    assert refused.returncode == 2 and "--host 0.0.0.0 lets other machines reach the server" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_sigterm_lets_a_request_in_flight_finish_then_stops(runs):
    running = Server(runs, "--run-dir", "runs/pond")
    result = {}

    def slow() -> None:
        result["answer"] = call(running.url + "/v1/sample", {"length": 5000, "seed": 1})

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)
    assert running.stop() == 0
    worker.join(timeout=30)
    status, body = result["answer"]
    assert status == 200 and len(body["text"]) == 5000
    assert running.log().rstrip().endswith("charrnn: stopped")


def test_nothing_to_serve_and_a_taken_port_are_one_sentence(runs):
    nothing = charrnn("serve", cwd=runs)
    assert nothing.returncode == 2 and "give the models to serve with --run-dir" in nothing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = charrnn("serve", "--run-dir", "runs/pond", "--port", port, cwd=runs)
    assert busy.returncode == 2 and f"could not listen on 127.0.0.1:{port}" in busy.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_page_streams_a_sample_in_a_real_browser(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    assert CHROMIUM, "the browser test needs Chromium: apt-get install chromium (.ci/run installs it)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = browser.new_page()
            outside = []
            page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
            page.goto(server.url + "/")
            page.wait_for_selector("#model option[value=pond]", state="attached")
            page.select_option("#model", "pond")
            page.fill("#prime", "MILLER:")
            page.fill("#length", "120")
            page.fill("#seed", "5")
            page.click("#sample")
            page.wait_for_selector("#output[data-done=yes]", timeout=30_000)
            shown = page.inner_text("#output")
            expected = call(
                server.url + "/v1/sample",
                {"model": "pond", "prime": "MILLER:", "length": 120, "seed": 5, "temperature": 0.8},
            )[1]["text"]
            assert shown.strip() == expected.strip() and shown.startswith("MILLER:")
            # top-p and a stop string reach the server; Stop cancels a long sample and frees its batch row
            page.fill("#top_p", "0.9")
            page.fill("#stop", "e")
            page.click("#sample")
            page.wait_for_selector("#output[data-done=yes]", timeout=30_000)
            with_stop = call(
                server.url + "/v1/sample",
                {"model": "pond", "prime": "MILLER:", "length": 120, "seed": 5, "temperature": 0.8, "top_p": 0.9},
            )[1]["text"]
            assert page.inner_text("#output").strip() == with_stop[: with_stop.index("e", 7) + 1].strip()
            page.fill("#stop", "")
            page.fill("#length", "100000")
            page.click("#sample")
            page.wait_for_function("document.querySelector('#output').textContent.length > 200")
            page.click("#cancel")
            page.wait_for_selector("#output[data-done=stopped]", timeout=10_000)
            assert not page.is_disabled("#sample") and page.is_disabled("#cancel")
            drawn = characters(server.url)
            time.sleep(0.3)
            assert characters(server.url) == drawn  # the sample's row left the batch
            page.select_option("#model", "labels")
            page.fill("#inputs", "abcdeab\nabc")
            page.click("#run")
            page.wait_for_selector("#table td")
            assert "abcdeab" in page.inner_text("#table")
            assert outside == []
        finally:
            browser.close()


def characters(url: str) -> float:
    """Characters the server has drawn so far (its metrics)."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("charrnn_characters_generated"))
