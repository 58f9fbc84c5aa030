"""Loads every export file with Hugging Face `datasets` and checks the columns and types that
sentence-transformers' MarginMSELoss, DistillKLDivLoss and CrossEncoder BCE training read:
inputs first, then `label`. Usage: python3 check_datasets.py EXPORT_DIR"""
import sys
from pathlib import Path

from datasets import load_dataset, Value, Sequence

out = Path(sys.argv[1])


def load(name):
    files = {s: str(out / s / f"{name}.jsonl") for s in ("train", "dev", "test") if (out / s / f"{name}.jsonl").exists()}
    assert files, f"no {name}.jsonl"
    return load_dataset("json", data_files=files)


def columns(ds):
    split = next(iter(ds.values()))
    return list(split.features), split.features


cols, f = columns(load("soft_labels"))
assert cols == ["query", "passage", "label"], cols
assert f["query"] == Value("string") and f["label"].dtype in ("float64", "float32"), f
print("soft_labels ok")

cols, f = columns(load("margin_mse"))
assert cols == ["query", "positive", "negative", "label"], cols
assert f["label"].dtype in ("float64", "float32"), f
print("margin_mse ok")

cols, f = columns(load("distill_kl"))
assert cols[:2] == ["query", "positive"] and cols[-1] == "label", cols
assert all(c.startswith("negative_") for c in cols[2:-1]) and len(cols) > 3, cols
assert isinstance(f["label"], (Sequence, list)) or "List" in type(f["label"]).__name__, f
print("distill_kl ok")

ds = load("sft")
cols, f = columns(ds)
assert cols == ["messages"], cols
row = next(iter(ds.values()))[0]
assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"], row
print("sft ok")

cols, f = columns(load("cot"))
assert cols[:2] == ["query_id", "product_id"] and "steps" in cols and "label" in cols, cols
print("cot ok")

# The dataset card (README.md) declares every format's splits and column types: the three cot
# files load as one dataset though a split holds no judged pair (its teacher columns all null),
# through the card and as plain JSON files given the card's features, whatever their order.
from datasets import load_dataset_builder, concatenate_datasets

by_card = load_dataset(str(out), "cot")
assert set(by_card) == {"train", "dev", "test"} & {p.name for p in out.iterdir()}, by_card
assert by_card["train"].features["teacher"]["distribution"]["E"] == Value("float64")
features = load_dataset_builder(str(out), "cot").info.features
files = [str(out / s / "cot.jsonl") for s in ("test", "dev", "train") if (out / s / "cot.jsonl").exists()]
for order in (files, files[::-1]):
    one = load_dataset("json", data_files=order, features=features)["train"]
    assert one.num_rows == sum(by_card[s].num_rows for s in by_card), one
assert concatenate_datasets(list(by_card.values())).num_rows == one.num_rows
for name in ("soft_labels", "margin_mse", "distill_kl", "sft"):
    assert load_dataset(str(out), name)["train"].num_rows > 0, name
print("cot as one dataset ok")

# With --parquet every file is also there as Parquet: the same columns in the same order and the
# same rows, through datasets' Parquet loader.
def present(v):
    """A row without its null fields (nested ones too): JSON leaves them out, Parquet has them."""
    if isinstance(v, dict):
        return {k: present(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [present(x) for x in v]
    return v


names = []
for name in ("cot", "margin_mse", "soft_labels", "distill_kl", "sft"):
    pq = {s: str(out / s / f"{name}.parquet") for s in ("train", "dev", "test") if (out / s / f"{name}.parquet").exists()}
    if not pq:
        continue
    from_json, from_parquet = load(name), load_dataset("parquet", data_files=pq)
    for split in from_json:
        a, b = from_json[split], from_parquet[split]
        assert list(a.features) == list(b.features), (name, list(a.features), list(b.features))
        assert a.num_rows == b.num_rows, (name, split, a.num_rows, b.num_rows)
        for i in (0, -1):
            assert present(a[i]) == present(b[i]), (name, split, a[i], b[i])
    names.append(name)
if names:
    print("parquet ok: " + ", ".join(names))
