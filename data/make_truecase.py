"""Make a truecasing data set (for `charrnn train --task tag`) from a text: each non-empty line lower-cased, a tab,
the line as written. The first 90 % of the lines are for training, the last 10 % for validation.

    python3 data/make_truecase.py ../shared/data/tinyshakespeare.txt runs/truecase-data

writes runs/truecase-data/train.tsv and val.tsv, and prints what a tagger must beat: restoring each word's most
frequent casing in the training lines (words never seen stay lower case), scored on the validation lines as letter
accuracy and the F1 of upper-case letters.
"""

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path


def most_frequent_casing(train: list[str], val: list[str]) -> tuple[float, float]:
    """Letter accuracy and upper-case F1 on `val` of the most frequent training casing of each word."""
    casings: dict[str, Counter] = defaultdict(Counter)
    for line in train:
        for word in re.findall(r"\w+", line):
            casings[word.lower()][word] += 1
    letters = right = true_upper = predicted_upper = both_upper = 0
    for line in val:
        guess = re.sub(r"\w+", lambda m: casings[m[0].lower()].most_common(1)[0][0] if casings[m[0].lower()] else
                       m[0].lower(), line)  # fmt: skip
        for truth, predicted in zip(line, guess, strict=True):
            if truth.isalpha():
                letters += 1
                right += truth == predicted
                true_upper += truth.isupper()
                predicted_upper += predicted.isupper()
                both_upper += truth.isupper() and predicted.isupper()
    precision, recall = both_upper / max(1, predicted_upper), both_upper / max(1, true_upper)
    return right / letters, 2 * precision * recall / max(1e-12, precision + recall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("text", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    lines = [line for line in args.text.read_text(encoding="utf-8").splitlines() if line.strip()]
    split = len(lines) * 9 // 10
    args.out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", lines[:split]), ("val", lines[split:])):
        (args.out / f"{name}.tsv").write_text("".join(f"{s.lower()}\t{s}\n" for s in part), encoding="utf-8")
    accuracy, f1 = most_frequent_casing(lines[:split], lines[split:])
    print(f"wrote {args.out}/train.tsv ({split:,} lines) and val.tsv ({len(lines) - split:,} lines); each word's most "
          f"frequent casing: letter accuracy {100 * accuracy:.1f} %, upper-case F1 {f1:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
