"""The lexical baseline a search team already has: TF-IDF features of the query and the product
title (unigrams and bigrams, one vocabulary), scikit-learn's LogisticRegression with balanced
class weights, trained on the human labels of an export's train split and scored on its test
split. Prints one JSON object: pairs, accuracy, macro-F1, Cohen's kappa, per-label figures.

Usage: python3 lexical_baseline.py EXPORT_DIR   (written by `workbench export --format cot
--source human-only --split SPEC`, so that it holds exactly the student's train and test pairs)
"""
import json
import sys
from pathlib import Path

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, precision_recall_fscore_support


def rows(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["label_source"] in ("annotator", "gold"):
                yield r["query"], r["item"]["title"], r["label"], r["query_id"]


def main(out):
    train = list(rows(out / "train" / "cot.jsonl"))
    test = list(rows(out / "test" / "cot.jsonl"))
    assert train and test, f"{out}: no human-labelled train or test rows"
    assert not {r[3] for r in train} & {r[3] for r in test}, "a query is in train and test"
    vocab = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
    vocab.fit([r[0] for r in train] + [r[1] for r in train])

    def features(rs):
        return hstack([vocab.transform([r[0] for r in rs]), vocab.transform([r[1] for r in rs])]).tocsr()

    model = LogisticRegression(class_weight="balanced", max_iter=2000)
    model.fit(features(train), [r[2] for r in train])
    predicted = model.predict(features(test))
    truth = [r[2] for r in test]
    labels = sorted(set(truth) | set(predicted))
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    print(json.dumps({
        "model": "tfidf-logreg",
        "train_pairs": len(train),
        "test_pairs": len(test),
        "test_queries": len({r[3] for r in test}),
        "accuracy": accuracy_score(truth, predicted),
        "macro_f1": f1_score(truth, predicted, average="macro"),
        "kappa": cohen_kappa_score(truth, predicted),
        "per_label": [
            {"label": l, "precision": pi, "recall": ri, "f1": fi, "support": int(si)}
            for l, pi, ri, fi, si in zip(labels, p, r, f, s)
        ],
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
