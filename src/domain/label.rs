use serde::{Deserialize, Serialize};

/// One grade of a label scale: a short key (what files and keyboards use), a name, a gain (for
/// NDCG and expected-gain scores) and a definition the teacher's prompt renders in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub name: String,
    pub gain: f64,
    #[serde(default)]
    pub definition: String,
}

/// A label scale is data, not code: the built-in ESCI, WANDS and binary scales, or a user's own
/// from a TOML file. Labels are ordered from most to least relevant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScale {
    pub name: String,
    pub labels: Vec<Label>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScaleError {
    #[error("a label scale needs at least two labels, this one has {0}")]
    TooFewLabels(usize),
    #[error("label key {0:?} appears twice")]
    DuplicateKey(String),
    #[error("label {key:?} has gain {gain}, gains must be finite and >= 0")]
    BadGain { key: String, gain: f64 },
    #[error("label key must be non-empty and without spaces, got {0:?}")]
    BadKey(String),
    #[error("{0}")]
    Toml(String),
}

fn label(key: &str, name: &str, gain: f64, definition: &str) -> Label {
    Label {
        key: key.into(),
        name: name.into(),
        gain,
        definition: definition.into(),
    }
}

impl LabelScale {
    /// Amazon's ESCI scale with the gains of the ESCI paper.
    pub fn esci() -> Self {
        LabelScale {
            name: "esci".into(),
            labels: vec![
                label(
                    "E",
                    "Exact",
                    1.0,
                    "the item is what the shopper asked for and meets every attribute in the query",
                ),
                label(
                    "S",
                    "Substitute",
                    0.1,
                    "the item is not exactly what was asked for (an attribute differs) but could serve instead",
                ),
                label(
                    "C",
                    "Complement",
                    0.01,
                    "the item is not what was asked for but is used together with it (an accessory, a part, a refill)",
                ),
                label(
                    "I",
                    "Irrelevant",
                    0.0,
                    "the item is unrelated to the query, or fails a central part of it",
                ),
            ],
        }
    }

    /// Wayfair's WANDS scale.
    pub fn wands() -> Self {
        LabelScale {
            name: "wands".into(),
            labels: vec![
                label("Exact", "Exact", 1.0, "the item fully matches the query"),
                label(
                    "Partial",
                    "Partial",
                    0.5,
                    "the item matches the query in part: the right kind of product with some attribute wrong, or a related product",
                ),
                label(
                    "Irrelevant",
                    "Irrelevant",
                    0.0,
                    "the item does not match the query",
                ),
            ],
        }
    }

    pub fn binary() -> Self {
        LabelScale {
            name: "binary".into(),
            labels: vec![
                label(
                    "1",
                    "Relevant",
                    1.0,
                    "the item is a good result for the query",
                ),
                label(
                    "0",
                    "Irrelevant",
                    0.0,
                    "the item is not a good result for the query",
                ),
            ],
        }
    }

    /// A built-in scale by name (`esci`, `wands`, `binary`).
    pub fn builtin(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "esci" => Some(Self::esci()),
            "wands" => Some(Self::wands()),
            "binary" => Some(Self::binary()),
            _ => None,
        }
    }

    /// Parses a user's scale:
    /// ```toml
    /// name = "graded"
    /// [[labels]]
    /// key = "3"
    /// name = "Perfect"
    /// gain = 1.0
    /// definition = "..."
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, ScaleError> {
        let scale: LabelScale =
            toml::from_str(text).map_err(|e| ScaleError::Toml(e.to_string()))?;
        scale.validate()?;
        Ok(scale)
    }

    pub fn validate(&self) -> Result<(), ScaleError> {
        if self.labels.len() < 2 {
            return Err(ScaleError::TooFewLabels(self.labels.len()));
        }
        for (i, l) in self.labels.iter().enumerate() {
            if l.key.is_empty() || l.key.contains(char::is_whitespace) {
                return Err(ScaleError::BadKey(l.key.clone()));
            }
            if !l.gain.is_finite() || l.gain < 0.0 {
                return Err(ScaleError::BadGain {
                    key: l.key.clone(),
                    gain: l.gain,
                });
            }
            if self.labels[..i].iter().any(|o| o.key == l.key) {
                return Err(ScaleError::DuplicateKey(l.key.clone()));
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().map(|l| l.key.as_str())
    }

    pub fn index_of_key(&self, key: &str) -> Option<usize> {
        self.labels.iter().position(|l| l.key == key)
    }

    /// The label whose key is `key`, exactly.
    pub fn label(&self, key: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.key == key)
    }

    /// The name of the label whose key is `key`; the key itself when the scale has none.
    pub fn name_of(&self, key: &str) -> String {
        self.label(key).map_or(key, |l| &l.name).to_string()
    }

    /// Resolves what a file or a model wrote, by key first, then by name, ignoring case and
    /// surrounding space: "E", "e", "Exact", " exact " all give ESCI's first label.
    pub fn resolve(&self, text: &str) -> Option<&Label> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        self.labels
            .iter()
            .find(|l| l.key == t)
            .or_else(|| self.labels.iter().find(|l| l.key.eq_ignore_ascii_case(t)))
            .or_else(|| self.labels.iter().find(|l| l.name.eq_ignore_ascii_case(t)))
    }

    /// The largest gain of the scale (never 0), for scores in [0, 1]: expected gain over it.
    pub fn top_gain(&self) -> f64 {
        self.labels
            .iter()
            .map(|l| l.gain)
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE)
    }

    /// The label a student's prediction stands for: the top of its distribution when it has
    /// one over this scale, else the label whose gain is nearest to `score × top gain`.
    pub fn student_label(&self, score: f64, distribution: Option<&[f64]>) -> usize {
        match distribution {
            Some(d) if d.len() == self.len() => {
                crate::domain::ScoreDist { probs: d.to_vec() }.argmax().0
            }
            _ => {
                let gain = score * self.top_gain();
                self.labels
                    .iter()
                    .enumerate()
                    .min_by(|a, b| (a.1.gain - gain).abs().total_cmp(&(b.1.gain - gain).abs()))
                    .map_or(0, |x| x.0)
            }
        }
    }

    pub fn gain_of(&self, key: &str) -> Option<f64> {
        self.label(key).map(|l| l.gain)
    }

    /// "E (Exact), S (Substitute), ..." for error messages.
    pub fn describe(&self) -> String {
        self.labels
            .iter()
            .map(|l| {
                if l.key == l.name {
                    l.key.clone()
                } else {
                    format!("{} ({})", l.key, l.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// scikit-learn's `class_weight="balanced"` over the labels given (indices into a scale of
/// `labels`): n / (k · n_c), so that every label counts as much in
/// the loss whatever its share.
pub fn balanced_class_weights(labels_seen: impl Iterator<Item = usize>, labels: usize) -> Vec<f64> {
    let mut counts = vec![0usize; labels];
    for l in labels_seen {
        counts[l] += 1;
    }
    let n: usize = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                n as f64 / (present * c) as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esci_resolves_keys_and_names_in_any_case() {
        let s = LabelScale::esci();
        assert_eq!(s.resolve("E").unwrap().name, "Exact");
        assert_eq!(s.resolve(" substitute ").unwrap().key, "S");
        assert_eq!(s.resolve("c").unwrap().key, "C");
        assert!(s.resolve("X").is_none());
        assert!(s.resolve("").is_none());
        assert_eq!(s.gain_of("C"), Some(0.01));
    }

    #[test]
    fn user_scale_from_toml_is_validated() {
        let ok = "name = \"graded\"\n[[labels]]\nkey = \"2\"\nname = \"Good\"\ngain = 1.0\n[[labels]]\nkey = \"0\"\nname = \"Bad\"\ngain = 0.0\n";
        let s = LabelScale::from_toml(ok).unwrap();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["2", "0"]);
        let dup = ok.replace("key = \"0\"", "key = \"2\"");
        assert_eq!(
            LabelScale::from_toml(&dup),
            Err(ScaleError::DuplicateKey("2".into()))
        );
        let one = "name = \"x\"\n[[labels]]\nkey = \"a\"\nname = \"A\"\ngain = 1.0\n";
        assert_eq!(LabelScale::from_toml(one), Err(ScaleError::TooFewLabels(1)));
        assert!(matches!(
            LabelScale::from_toml("name = 3"),
            Err(ScaleError::Toml(_))
        ));
    }

    #[test]
    fn builtins_are_valid() {
        for n in ["esci", "WANDS", "binary"] {
            LabelScale::builtin(n).unwrap().validate().unwrap();
        }
        assert!(LabelScale::builtin("nope").is_none());
    }
}
