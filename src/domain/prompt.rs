//! The teacher's prompt: templates from `prompts/`, rendered with the label scale, few-shot
//! examples from the fixture and the pair; the JSON schema that constrains the output; and the
//! content hash that a judgment records.

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::domain::{Item, LabelScale, Pair, Rationale};

const SYSTEM: &str = include_str!("../../prompts/system.txt");
const USER: &str = include_str!("../../prompts/user.txt");
const SCORE_SYSTEM: &str = include_str!("../../prompts/score_system.txt");
const EXAMPLES: &str = include_str!("../../prompts/examples.json");

/// The stated truncation rule: an item's title, brand, colour and category are always given in
/// full; its description and bullet points together are cut at this many characters, at a word
/// boundary, and the judgment records that the item text was cut.
pub const ITEM_DETAIL_CHARS: usize = 300;

/// Dimensions the teacher may judge, in the order the prompt lists them.
pub const DIMENSIONS: [&str; 7] = [
    "category",
    "brand",
    "model",
    "color",
    "size",
    "material",
    "compatibility",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Cot,
    Score,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cot => "cot",
            Mode::Score => "score",
        }
    }
}

/// A few-shot example of the prompt, as `prompts/examples.json` writes it.
#[derive(Deserialize)]
struct Example {
    query: String,
    item: ExampleItem,
    rationale: Rationale,
}

/// The parts of an example's item the prompt shows (a `domain::Item` without ids or text).
#[derive(Deserialize)]
struct ExampleItem {
    title: String,
    #[serde(default)]
    brand: String,
    #[serde(default)]
    attributes: crate::domain::Attributes,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in OpenAI-style chat messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A prompt ready for pairs: the shared prefix (system text and examples) is built once, so
/// every request starts with the same tokens and the backend's prefix cache can reuse them.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub mode: Mode,
    prefix: Vec<Message>,
    pub schema: Value,
    pub label_names: Vec<String>,
    pub hash: String,
    /// Characters of description and bullet points the pair's item keeps (ITEM_DETAIL_CHARS).
    pub detail_chars: usize,
    /// Whether each request ends with the query's words the item lacks (`EVIDENCE`).
    pub evidence: bool,
}

/// The line `evidence` adds after the item: a small model reads a missing model number or size
/// from one line more reliably than from comparing two texts.
const EVIDENCE: &str = "Query words the item lacks:";

/// A rendered request for one pair.
#[derive(Debug, Clone)]
pub struct PairPrompt {
    pub messages: Vec<Message>,
    pub item_truncated: bool,
}

impl Prompt {
    pub fn new(scale: &LabelScale, mode: Mode, with_examples: bool) -> Prompt {
        Prompt::configured(scale, mode, with_examples, ITEM_DETAIL_CHARS, false)
    }

    /// As [`Prompt::new`], keeping `detail_chars` characters of each item's details, and with
    /// `evidence`, naming the query's words the item lacks after the item.
    pub fn configured(
        scale: &LabelScale,
        mode: Mode,
        with_examples: bool,
        detail_chars: usize,
        evidence: bool,
    ) -> Prompt {
        let labels = scale
            .labels
            .iter()
            .map(|l| format!("- {}: {}", l.name, l.definition))
            .collect::<Vec<_>>()
            .join("\n");
        let label_names: Vec<String> = scale.labels.iter().map(|l| l.name.clone()).collect();
        let (system, schema) = match mode {
            Mode::Cot => (
                SYSTEM.replace("{{labels}}", &labels),
                cot_schema(&label_names),
            ),
            Mode::Score => (
                SCORE_SYSTEM.replace("{{labels}}", &labels),
                json!({"enum": label_names}),
            ),
        };
        let mut prefix = vec![Message {
            role: Role::System,
            text: system.trim_end().to_string(),
        }];
        if with_examples && mode == Mode::Cot {
            let examples: Vec<Example> =
                serde_json::from_str(EXAMPLES).expect("prompts/examples.json is valid");
            for ex in examples {
                let item = Item {
                    ext_id: String::new(),
                    title: ex.item.title,
                    description: String::new(),
                    brand: ex.item.brand,
                    attributes: ex.item.attributes,
                };
                let Some(rationale) = example_in_scale(ex.rationale, scale) else {
                    continue;
                };
                prefix.push(Message {
                    role: Role::User,
                    text: render_user(&ex.query, &item, ITEM_DETAIL_CHARS, evidence).0,
                });
                prefix.push(Message {
                    role: Role::Assistant,
                    text: serde_json::to_string(&example_json(&rationale)).expect("serialisable"),
                });
            }
        }
        let mut hasher = Sha256::new();
        hasher.update(mode.as_str());
        for m in &prefix {
            hasher.update([0u8]);
            hasher.update(m.text.as_bytes());
        }
        hasher.update([0u8]);
        hasher.update(USER.as_bytes());
        hasher.update(schema.to_string().as_bytes());
        hasher.update(detail_chars.to_le_bytes());
        // Only when on, so that the hashes of judgments made before the option stay as they were.
        if evidence {
            hasher.update(EVIDENCE.as_bytes());
        }
        let hash = hex::encode(&hasher.finalize()[..6]);
        Prompt {
            mode,
            prefix,
            schema,
            label_names,
            hash,
            detail_chars,
            evidence,
        }
    }

    pub fn for_pair(&self, pair: &Pair) -> PairPrompt {
        let (text, item_truncated) = render_user(
            &pair.query.text,
            &pair.item,
            self.detail_chars,
            self.evidence,
        );
        let mut messages = self.prefix.clone();
        messages.push(Message {
            role: Role::User,
            text,
        });
        PairPrompt {
            messages,
            item_truncated,
        }
    }
}

/// Examples are written in ESCI; on another scale they are left out rather than mislabelled.
fn example_in_scale(r: Rationale, scale: &LabelScale) -> Option<Rationale> {
    scale.labels.iter().any(|l| l.name == r.label).then_some(r)
}

/// The example rationale exactly as the schema asks the model to write it.
fn example_json(r: &Rationale) -> Value {
    answer_json(r, &r.label)
}

/// A rationale as the teacher writes it (the CoT schema), its label written as `label`: the
/// few-shot examples' answers, and the answers the teacher is fine-tuned on.
pub fn answer_json(r: &Rationale, label: &str) -> Value {
    json!({
        "query_analysis": r.query_analysis,
        "item_analysis": r.item_analysis,
        "dimensions": r.dimensions.iter().map(|d| json!({
            "name": d.name, "query_value": d.query_value, "item_value": d.item_value, "verdict": d.verdict.as_str(),
        })).collect::<Vec<_>>(),
        "conclusion": r.conclusion,
        "label": label,
    })
}

/// Longest analysis or conclusion the schema allows. Every character is decoded token by token,
/// and the examples show these are enough.
const ANALYSIS_CHARS: usize = 80;
/// Longest query or item value of a dimension.
const VALUE_CHARS: usize = 30;

/// The Rationale JSON schema, bounded: unbounded strings and arrays let a small model loop
/// until the token limit, cut mid-string.
fn cot_schema(label_names: &[String]) -> Value {
    let text = |n: usize| json!({"type": "string", "maxLength": n});
    json!({
        "type": "object",
        "properties": {
            "query_analysis": text(ANALYSIS_CHARS),
            "item_analysis": text(ANALYSIS_CHARS),
            "dimensions": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"enum": DIMENSIONS},
                        "query_value": text(VALUE_CHARS),
                        "item_value": text(VALUE_CHARS),
                        "verdict": {"enum": ["match", "partial", "mismatch", "not_mentioned"]}
                    },
                    "required": ["name", "query_value", "item_value", "verdict"],
                    "additionalProperties": false
                }
            },
            "conclusion": text(ANALYSIS_CHARS),
            "label": {"enum": label_names}
        },
        "required": ["query_analysis", "item_analysis", "dimensions", "conclusion", "label"],
        "additionalProperties": false
    })
}

/// The item as the teacher reads it, and whether its details were cut (see ITEM_DETAIL_CHARS).
pub fn render_item(item: &Item) -> (String, bool) {
    render_item_cut(item, ITEM_DETAIL_CHARS)
}

/// The item with at most `detail_chars` characters of its details.
pub fn render_item_cut(item: &Item, detail_chars: usize) -> (String, bool) {
    render_item_joined(item, detail_chars, "\n")
}

/// The rendering with every line break written as `newline` (the export's passages put the
/// item on one line). Built in one buffer: the export renders a million of these.
pub fn render_item_joined(item: &Item, detail_chars: usize, newline: &str) -> (String, bool) {
    let mut out =
        String::with_capacity(item.title.len() + item.description.len().min(detail_chars * 4) + 64);
    let push = |out: &mut String, text: &str| {
        if newline == "\n" || !text.contains('\n') {
            out.push_str(text);
        } else {
            out.push_str(&text.replace('\n', newline));
        }
    };
    let field = |out: &mut String, name: &str, value: &str| {
        out.push_str(newline);
        out.push_str(name);
        out.push_str(": ");
        push(out, value);
    };
    push(&mut out, item.title.trim());
    if !item.brand.trim().is_empty() {
        field(&mut out, "Brand", item.brand.trim());
    }
    if let Some(c) = item.attribute("color").filter(|c| c != "None") {
        field(&mut out, "Color", &c);
    }
    if let Some(c) = item.attribute("category") {
        field(&mut out, "Category", &c);
    }
    let description = item.description.trim();
    let (details, cut) = match item.attribute("bullet_points") {
        None => cut_at_word(description, detail_chars),
        Some(b) => {
            let mut details = description.to_string();
            if !details.is_empty() {
                details.push(' ');
            }
            details += &b.replace('\n', "; ");
            cut_at_word(&details, detail_chars)
        }
    };
    if !details.is_empty() {
        field(&mut out, "Details", &details);
    }
    (out, cut)
}

fn render_user(query: &str, item: &Item, detail_chars: usize, evidence: bool) -> (String, bool) {
    let (item_text, cut) = render_item_cut(item, detail_chars);
    let mut text = USER
        .replace("{{query}}", query.trim())
        .replace("{{item}}", &item_text)
        .trim_end()
        .to_string();
    if evidence {
        let missing = super::lexical::missing_words(query, &item_text);
        let missing = if missing.is_empty() {
            "none".to_string()
        } else {
            missing.join(", ")
        };
        text.push_str(&format!("\n{EVIDENCE} {missing}"));
    }
    (text, cut)
}

/// Cuts `text` to at most `max` characters at a word boundary, marking the cut with "…".
pub fn cut_at_word(text: &str, max: usize) -> (String, bool) {
    // Scans at most `max` characters, not the whole text (exports render a million of these).
    let Some((end, _)) = text.char_indices().nth(max) else {
        return (text.to_string(), false);
    };
    let head = &text[..end];
    let head = head
        .rfind(char::is_whitespace)
        .map(|i| &head[..i])
        .unwrap_or(head);
    (format!("{}…", head.trim_end()), true)
}

/// What separates the fields of a `passage` (the title comes first).
pub const PASSAGE_FIELD_SEPARATOR: &str = " | ";

/// The text a student reads for an item: the same rendering the teacher reads.
pub fn passage(pair: &Pair) -> String {
    render_item_joined(&pair.item, ITEM_DETAIL_CHARS, PASSAGE_FIELD_SEPARATOR).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Pair, Query};

    fn pair(description: &str) -> Pair {
        Pair {
            id: 1,
            query: Query {
                ext_id: "q".into(),
                text: "wireless mouse".into(),
            },
            item: Item {
                ext_id: "i".into(),
                title: "Logitech M185 Wireless Mouse".into(),
                description: description.into(),
                brand: "Logitech".into(),
                attributes: json!({"color": "Grey", "category": ["Electronics", "Mice"]}).into(),
            },
            gold_label: None,
            split: None,
            origin: "import".into(),
        }
    }

    #[test]
    fn long_details_are_cut_at_a_word_and_flagged() {
        let p = Prompt::new(&LabelScale::esci(), Mode::Cot, false);
        let short = p.for_pair(&pair("Small and reliable."));
        assert!(!short.item_truncated);
        let long = p.for_pair(&pair(&"word ".repeat(200)));
        assert!(long.item_truncated);
        let text = &long.messages.last().unwrap().text;
        assert!(text.contains("Brand: Logitech") && text.contains("Category: Electronics > Mice"));
        assert!(text.ends_with("word…"), "{text}");
    }

    #[test]
    fn hash_depends_on_scale_mode_and_examples_only() {
        let esci = Prompt::new(&LabelScale::esci(), Mode::Cot, true);
        assert_eq!(
            esci.hash,
            Prompt::new(&LabelScale::esci(), Mode::Cot, true).hash
        );
        assert_ne!(
            esci.hash,
            Prompt::new(&LabelScale::esci(), Mode::Cot, false).hash
        );
        assert_ne!(
            esci.hash,
            Prompt::new(&LabelScale::esci(), Mode::Score, true).hash
        );
        assert_ne!(
            esci.hash,
            Prompt::new(&LabelScale::wands(), Mode::Cot, true).hash
        );
        // two few-shot examples: system + 2 × (user, assistant) + the pair
        assert_eq!(esci.for_pair(&pair("")).messages.len(), 6);
        assert!(
            esci.for_pair(&pair("")).messages[0]
                .text
                .contains("- Exact: the item is what the shopper")
        );
    }

    #[test]
    fn examples_match_the_schema() {
        let p = Prompt::new(&LabelScale::esci(), Mode::Cot, true);
        let ex: Value = serde_json::from_str(&p.for_pair(&pair("")).messages[2].text).unwrap();
        let labels = p.schema["properties"]["label"]["enum"].as_array().unwrap();
        assert!(labels.contains(&ex["label"]));
        assert!(ex["dimensions"].as_array().unwrap().len() <= 3);
    }

    #[test]
    fn a_joined_rendering_is_the_rendering_with_its_line_breaks_replaced() {
        let mut item = pair("First line.\nSecond line, and some more words here.").item;
        item.title = "Logitech\nM185".into();
        item.attributes = json!({"color": "Grey", "category": ["Electronics", "Mice"], "bullet_points": "Small\nReliable"}).into();
        for chars in [0, 20, 300] {
            let (text, cut) = render_item_cut(&item, chars);
            assert_eq!(
                render_item_joined(&item, chars, " | "),
                (text.replace('\n', " | "), cut)
            );
        }
        assert!(render_item(&item).0.contains(
            "Details: First line.\nSecond line, and some more words here. Small; Reliable"
        ));
    }

    #[test]
    fn evidence_names_the_query_words_the_item_lacks_and_changes_the_hash() {
        let scale = LabelScale::esci();
        let plain = Prompt::new(&scale, Mode::Score, true);
        let with = Prompt::configured(&scale, Mode::Score, true, ITEM_DETAIL_CHARS, true);
        assert_ne!(plain.hash, with.hash);
        let mut p = pair("");
        let text =
            |prompt: &Prompt, p: &Pair| prompt.for_pair(p).messages.last().unwrap().text.clone();
        assert_eq!(
            text(&with, &p),
            format!("{}\nQuery words the item lacks: none", text(&plain, &p))
        );
        p.query.text = "logitech wireless mouse m705 grey".into();
        assert!(
            text(&with, &p).ends_with("\nQuery words the item lacks: m705"),
            "{}",
            text(&with, &p)
        );
        assert!(!text(&plain, &p).contains("lacks"));
    }
}
