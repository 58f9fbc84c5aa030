//! The export's dataset card (`OUT/README.md`): the YAML header Hugging Face `datasets` reads,
//! one configuration per format with its split files and its features. With the types declared,
//! `load_dataset(OUT, "cot")` loads every split alike even where a split's rows hold only nulls
//! in some column (a split with no judged pair): inferred from the rows, that column would be
//! typed `null` there and the splits would not load as one dataset.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::formats::Format;
use crate::domain::LabelScale;

fn string(name: &str) -> Value {
    json!({"name": name, "dtype": "string"})
}

fn typed(name: &str, dtype: &str) -> Value {
    json!({"name": name, "dtype": dtype})
}

/// The features of a format's rows, in the form of a card's `dataset_info.features`.
pub fn features(format: Format, scale: &LabelScale, negatives: usize) -> Value {
    match format {
        Format::SoftLabels => json!([
            string("query"),
            string("passage"),
            typed("label", "float64")
        ]),
        Format::MarginMse => json!([
            string("query"),
            string("positive"),
            string("negative"),
            typed("label", "float64")
        ]),
        Format::DistillKl => {
            let mut f = vec![string("query"), string("positive")];
            f.extend((1..=negatives).map(|i| string(&format!("negative_{i}"))));
            f.push(json!({"name": "label", "list": "float64"}));
            Value::Array(f)
        }
        Format::Sft => json!([{"name": "messages", "list": [string("role"), string("content")]}]),
        Format::Cot => {
            let distribution: Vec<Value> = scale
                .labels
                .iter()
                .map(|l| typed(&l.key, "float64"))
                .collect();
            json!([
                string("query_id"),
                string("product_id"),
                string("split"),
                string("origin"),
                string("query"),
                {"name": "item", "struct": [
                    string("title"), string("brand"), string("description"),
                    {"name": "attributes", "list": [string("name"), string("value")]},
                ]},
                {"name": "teacher", "struct": [
                    string("model"), string("prompt_hash"), string("label"),
                    {"name": "distribution", "struct": distribution},
                    typed("expected_gain", "float64"),
                    {"name": "calibrated_distribution", "struct": distribution},
                ]},
                {"name": "steps", "list": [
                    string("step"), string("text"), string("source"), typed("verified", "bool"),
                    string("name"), string("query_value"), string("item_value"), string("verdict"),
                    string("note"),
                ]},
                string("gold_label"),
                string("label"),
                string("label_source"),
                typed("human_verified", "bool"),
                typed("human_corrected", "bool"),
                {"name": "annotators", "list": "string"},
                string("updated_at"),
            ])
        }
    }
}

/// `README.md` for the files written (`split/format.jsonl` → rows): a configuration per format,
/// its splits in train, dev, test order. YAML is a superset of JSON, so the header is JSON.
pub fn dataset_card(
    formats: &[Format],
    files: &BTreeMap<String, (u64, String)>,
    scale: &LabelScale,
    negatives: usize,
) -> String {
    let mut configs = Vec::new();
    let mut infos = Vec::new();
    for &f in formats {
        let splits: Vec<Value> = ["train", "dev", "test"]
            .iter()
            .filter(|s| files.contains_key(&format!("{s}/{}", f.file())))
            .map(|s| json!({"split": s, "path": format!("{s}/{}", f.file())}))
            .collect();
        if splits.is_empty() {
            continue;
        }
        configs.push(json!({"config_name": f.name(), "data_files": splits}));
        infos.push(json!({"config_name": f.name(), "features": features(f, scale, negatives)}));
    }
    let header = json!({"configs": configs, "dataset_info": infos});
    format!(
        "---\n{}\n---\n\n# Distillation data written by `workbench export`\n\n\
         One configuration per format, with its splits and column types:\n\n\
         ```python\nfrom datasets import load_dataset\n\
         cot = load_dataset(\"path/to/this/folder\", \"cot\")  # train, dev, test\n```\n\n\
         `manifest.json` holds the counts, the label distribution, the command and a sha256 per file.\n",
        serde_json::to_string_pretty(&header).expect("JSON")
    )
}
