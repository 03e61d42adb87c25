"""Write data/pond.txt: a small play in verse-like dialogue, made up from a handwritten grammar.

The project ships its own small corpus for the quick start and the tests, so no outside text is copied in.
Run from the repository root to regenerate it byte for byte:  python data/make_pond.py
(`--size N --out FILE` writes a longer play elsewhere, e.g. the 200 MB corpus of benchmarks/memory.py).
"""

import argparse
import random
from pathlib import Path

SPEAKERS = ["HERON", "MILLER", "OLD WREN", "BEATRIX", "TOMAS", "THE FERRYMAN", "LADY ASH", "PIP"]
NOUNS = [
    "pond",
    "reed",
    "moon",
    "bread",
    "river",
    "lantern",
    "mill",
    "willow",
    "frog",
    "stone",
    "boat",
    "heron",
    "rain",
    "field",
    "bell",
    "orchard",
    "wheel",
    "candle",
    "fish",
    "winter",
    "road",
    "door",
]
ADJECTIVES = [
    "cold",
    "quiet",
    "green",
    "late",
    "old",
    "bright",
    "hollow",
    "sweet",
    "grey",
    "little",
    "deep",
    "silver",
    "tired",
    "warm",
    "wild",
    "patient",
]
VERBS = ["wait", "sing", "turn", "sleep", "listen", "wander", "burn", "fall", "rise", "remember", "stay"]
TIMES = ["tonight", "at dawn", "in the morning", "before the rain", "all winter", "when the bell rings", "again"]
TEMPLATES = [
    "The {n} is {a} {t}, and the {n2} is {a2}.",
    "Why does the {n} {v} {t}?",
    "I have seen the {a} {n} {v} by the {n2}.",
    "Then let us {v} {t}, for the {n} is {a}.",
    "O {a} {n}, {v} for me {t}!",
    "No, no; the {n} will {v} {t}.",
    "Go to the {n2}, and tell the {n} to {v}.",
    "If the {n} should {v}, what of the {a} {n2}?",
    "My {n} is {a}, my {n2} is {a2}, and I {v} {t}.",
    "So it was, and so the {n} shall {v}.",
]


def sentence(rng: random.Random) -> str:
    template = rng.choice(TEMPLATES)
    return template.format(
        n=rng.choice(NOUNS),
        n2=rng.choice(NOUNS),
        a=rng.choice(ADJECTIVES),
        a2=rng.choice(ADJECTIVES),
        v=rng.choice(VERBS),
        t=rng.choice(TIMES),
    )


def speech(rng: random.Random) -> str:
    lines = [" ".join(sentence(rng) for _ in range(rng.randint(1, 2))) for _ in range(rng.randint(1, 4))]
    return f"{rng.choice(SPEAKERS)}:\n" + "\n".join(lines) + "\n"


def write_play(path: Path, size: int, seed: int = 2026) -> int:
    """Write speeches to `path` until it holds at least `size` characters; returns the count."""
    rng = random.Random(seed)
    written = 0
    with path.open("w", encoding="utf-8") as f:
        while written < size:
            text = ("\n" if written else "") + speech(rng)
            f.write(text)
            written += len(text)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("pond.txt"))
    parser.add_argument("--size", type=int, default=200_000, help="characters to write at least")
    args = parser.parse_args()
    written = write_play(args.out, args.size)
    print(f"wrote {args.out} ({written:,} characters)")


if __name__ == "__main__":
    main()
