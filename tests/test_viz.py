"""`charrnn viz`: the detectors and the ranking of cells (on a cell set by hand to track quotes, and on random
weights), the page's size, the terminal view, and the page itself in a real browser (headless Chromium)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from charrnn.apps.viz import write_page
from charrnn.data.text import Vocab
from charrnn.nn.language_model import LanguageModelNetwork
from charrnn.nn.stack import RecurrentSpec
from charrnn.tasks.trace import detectors, rank_cells, trace_language_model

QUOTED = 'He said "hello there" and then "bye", twice. She wrote "a long line of words" and left. ' * 12


def quote_tracker(vocab: Vocab, hidden: int = 8) -> LanguageModelNetwork:
    """An LSTM whose unit 0 flips its cell state at every double quote: c = +1 inside quotes, -1 outside.

    o = 1 always (h = tanh(c)); at a quote the forget gate closes (f = 0) and the input gate opens (i = 1), and the
    candidate g = tanh(5 - 10 h_{t-1}) is +1 if the unit was outside (h <= 0) and -1 if it was inside."""
    model = LanguageModelNetwork(len(vocab), RecurrentSpec("lstm", hidden, 1, "float64"), seed=3)
    model.flat_params[:] = np.random.default_rng(0).normal(0.0, 0.3, model.num_params)
    n, quote = hidden, vocab.index['"']
    W_x, W_h, b = model.params["l0.W_x"], model.params["l0.W_h"], model.params["l0.b"]
    o, i, f, g = 0, n, 2 * n, 3 * n  # gate blocks [o, i, f, g]; unit 0 of each
    W_x[:, [o, i, f, g]] = 0.0
    W_h[:, [o, i, f, g]] = 0.0
    b[o], b[i], b[f], b[g] = 10.0, -10.0, 10.0, 5.0
    W_x[quote, i], W_x[quote, f] = 20.0, -20.0
    W_h[0, g] = -10.0
    return model


def test_detectors_follow_the_text():
    text = 'x = (a[1], "q\'s") # c\n  y'
    found = detectors(text)
    at = text.index
    assert found["round bracket depth"][at("a")] == 1 and found["square bracket depth"][at("1")] == 1
    assert found["inside double quotes"][at("q")] == 1 and found["inside double quotes"][at(")")] == 0
    assert found["inside single quotes"][at("q") + 2] == 0  # the apostrophe in q's is not a quote
    assert found["inside a comment"][at("c")] == 1 and found["inside a comment"][at("y")] == 0
    assert found["indentation"][at("y")] == 2 and found["position in the line"][at("y")] == 3
    assert found["after a line break"][at("y") - 2] == 1 and found["digit"][at("1")] == 1
    assert found["start of a word"][at("a")] == 1 and found["upper case"].sum() == 0


def test_a_cell_set_to_track_quotes_ranks_first_for_quotes():
    vocab = Vocab.from_text(QUOTED)
    ranking = rank_cells(trace_language_model(quote_tracker(vocab), vocab, QUOTED))
    best = ranking["inside double quotes"][0]
    assert (best["layer"], best["unit"]) == ("l0", 0) and best["kind"] in ("h", "c"), ranking["inside double quotes"]
    assert best["r"] > 0.97


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_random_weights_track_nothing_strongly(cell):
    text = (Path(__file__).parent.parent / "data" / "pond.txt").read_text(encoding="utf-8")[:3000] + QUOTED
    vocab = Vocab.from_text(text)
    ranking = rank_cells(
        trace_language_model(LanguageModelNetwork(len(vocab), RecurrentSpec(cell, 64, 2), seed=5), vocab, text)
    )
    strongest = max(abs(c["r"]) for cells in ranking.values() for c in cells)
    assert strongest < 0.7, {name: cells[0] for name, cells in ranking.items()}


def test_a_page_of_5000_characters_of_a_2x512_lstm_stays_a_few_mb():
    text = (Path(__file__).parent.parent / "data" / "pond.txt").read_text(encoding="utf-8")[:5000]
    vocab = Vocab.from_text(text)
    model = LanguageModelNetwork(len(vocab), RecurrentSpec("lstm", 512, 2))
    model.flat_params[:] = np.random.default_rng(0).normal(0.0, 0.15, model.num_params)  # spread out, as trained
    trace = trace_language_model(model, vocab, text)
    page = write_page(trace, rank_cells(trace), "lstm", "test")
    assert len(page.encode()) < 6e6


@pytest.fixture
def trained(run_cli, small_corpus, tmp_path):
    quoted = tmp_path / "quoted.txt"
    quoted.write_text(small_corpus.read_text() + QUOTED)
    code, _, err = run_cli(
        "train",
        quoted,
        "--layers",
        "2",
        "--hidden",
        "24",
        "--batch-size",
        "8",
        "--seq-len",
        "32",
        "--max-steps",
        "60",
        "--val-frac",
        "0.3",
    )
    assert code == 0, err
    return tmp_path / "runs" / "quoted"


def test_viz_writes_a_page_and_a_terminal_view(run_cli, trained, tmp_path):
    code, _, err = run_cli("viz", "--out", "page.html", "--max-len", "1500")
    assert code == 0 and "wrote page.html" in err, err
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert "<script" in page and "http" not in page.split("<script>")[1]  # nothing fetched
    data = json.loads(page.split("const DATA = ")[1].split(";\n", 1)[0].replace("<\\/", "</"))
    assert len(data["text"]) == 1500 and data["series"] and data["ranking"]
    code, out, _ = run_cli("viz", 'He said "hi" to me.', "--terminal", "--cell-index", "1:3")
    assert code == 0 and "l1 unit 3" in out and "cells that track something" in out
    code, _, err = run_cli("viz", "x" * 50, "--max-len", "20")
    assert code == 2 and "more than --max-len 20" in err
    (tmp_path / "mine.html").write_text("<html>my own page</html>")
    code, _, err = run_cli("viz", "--out", "mine.html")
    assert code == 2 and "is not a charrnn viz page" in err


def test_viz_of_a_tagger_shows_its_input(run_cli, tmp_path):
    lines = [("he said hello", "He said hello"), ("we left", "We left"), ("rome is far", "Rome is far")] * 30
    (tmp_path / "t.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in lines), encoding="utf-8")
    assert (
        run_cli(
            "train",
            tmp_path / "t.tsv",
            "--task",
            "tag",
            "--bidirectional",
            "--layers",
            "1",
            "--hidden",
            "8",
            "--max-steps",
            "5",
        )[0]
        == 0
    )
    code, out, err = run_cli("viz", "--terminal", "--max-len", "200")
    assert code == 0 and ("l0r" in out or "l0 " in out), err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_page_works_in_a_real_browser(run_cli, trained, tmp_path):
    """Headless Chromium: no console errors, another cell recolours the text, hovering shows predictions, the
    detector links select their cell."""
    sync_api = pytest.importorskip("playwright.sync_api")
    assert CHROMIUM, "the browser test needs Chromium: apt-get install chromium (.ci/run installs it)"
    assert run_cli("viz", "--out", "page.html", "--max-len", "1200")[0] == 0
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "page.html").as_uri())
        page.wait_for_function("document.querySelectorAll('#text span')[5].style.background !== ''")

        def colours():
            return page.eval_on_selector_all("#text span", "spans => spans.map(s => s.style.background)")

        before, unit = colours(), page.input_value("#unit")
        assert len(set(before)) > 3  # a cell's activations vary
        page.keyboard.press("j")  # the next unit
        page.wait_for_function(f"document.getElementById('unit').value !== '{unit}'")
        page.wait_for_timeout(200)
        assert colours() != before
        page.hover("#text span:nth-child(40)")
        assert page.is_visible("#tip") and "likeliest next character" in page.inner_text("#tip")
        assert "%" in page.inner_text("#tip") and "loss on the next one" in page.inner_text("#tip")
        link = page.locator(".detector a").nth(1)
        unit, layer = link.get_attribute("data-unit"), link.get_attribute("data-layer")
        link.click()
        page.wait_for_timeout(200)
        assert page.input_value("#unit") == unit and page.input_value("#layer") == layer
        assert "on" in (link.get_attribute("class") or "")
        page.keyboard.press("s")  # surprise view: coloured by the loss
        page.wait_for_timeout(200)
        assert page.input_value("#view") == "surprise" and colours() != before
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert not errors, errors
    assert (tmp_path / "page.png").stat().st_size > 10_000
