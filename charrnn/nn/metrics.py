"""What a classifier's or a tagger's predictions score against the truth: plain counting, no model here."""

import math
from collections.abc import Sequence

import numpy as np

LOG2E = 1.0 / math.log(2.0)  # nats -> bits


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_labels: int) -> np.ndarray:
    """counts[i, j]: examples of label i predicted as label j."""
    counts = np.zeros((num_labels, num_labels), np.int64)
    np.add.at(counts, (truth, predicted), 1)
    return counts


def per_label(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of each label (0 where undefined: no prediction or no example of it)."""
    hits = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return precision, recall, f1, support


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 (the mean F1 over the labels that have examples), per-label figures and the confusion."""
    confusion = confusion_matrix(truth, predicted, len(labels))
    precision, recall, f1, support = per_label(confusion)
    present = support > 0
    return {
        "accuracy": float(np.mean(truth == predicted)) if len(truth) else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_label": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": confusion.tolist(),
        "labels": list(labels),
    }


def tagging_metrics(inputs: Sequence[str], truth: Sequence[str], predicted: Sequence[str]) -> dict:
    """Per-character accuracy, the share of inputs whose whole output is right, and precision/recall/F1 of the
    characters the tagger changes (output != input): for truecasing, exactly the upper-case letters."""
    chars = right = exact = changed_true = changed_predicted = changed_right = 0
    for source, gold, guess in zip(inputs, truth, predicted, strict=True):
        chars += len(gold)
        hits = sum(g == p for g, p in zip(gold, guess, strict=True))
        right += hits
        exact += hits == len(gold)
        for s, g, p in zip(source, gold, guess, strict=True):
            changed_true += g != s
            changed_predicted += p != s
            changed_right += p == g != s
    precision = changed_right / changed_predicted if changed_predicted else 0.0
    recall = changed_right / changed_true if changed_true else 0.0
    return {
        "char_accuracy": right / chars if chars else 0.0,
        "exact_match": exact / len(truth) if len(truth) else 0.0,
        "change_precision": precision,
        "change_recall": recall,
        "change_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences (insertions, deletions and substitutions cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def sequence_metrics(outputs: Sequence[Sequence], references: Sequence[Sequence[Sequence]]) -> dict:
    """Exact match and word error rate (an output is right when it equals any of its references), and the token
    error rate: the edit distance to the closest reference over that reference's length, summed over the inputs
    (the phoneme error rate when the tokens are phonemes, the character error rate when they are characters)."""
    right = edits = length = 0
    for output, refs in zip(outputs, references, strict=True):
        output = list(output)
        right += any(output == list(r) for r in refs)
        distance, closest = min((edit_distance(output, r), len(r)) for r in refs)
        edits += distance
        length += closest
    exact = right / len(outputs) if outputs else 0.0
    return {"exact_match": exact, "wer": 1.0 - exact, "ter": edits / length if length else 0.0}
