use serde::{Deserialize, Serialize};

/// How an item fares on one dimension of the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Match,
    Partial,
    Mismatch,
    NotMentioned,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Match,
        Verdict::Partial,
        Verdict::Mismatch,
        Verdict::NotMentioned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Match => "match",
            Verdict::Partial => "partial",
            Verdict::Mismatch => "mismatch",
            Verdict::NotMentioned => "not_mentioned",
        }
    }

    /// The next verdict in a fixed cycle, for a key that cycles it in the review UI.
    pub fn cycle(self) -> Verdict {
        let i = Self::ALL.iter().position(|v| *v == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        let t = text.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Self::ALL.into_iter().find(|v| v.as_str() == t)
    }
}

/// One dimension of the judgment (category, brand, model, color, size …): what the query asks,
/// what the item has, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    #[serde(default)]
    pub query_value: String,
    #[serde(default)]
    pub item_value: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub note: String,
}

/// The decomposed chain of thought of ELLM-rele: understand the query, understand the item, judge
/// each dimension, conclude, label. The teacher writes it, annotators correct it, audits read it,
/// and exports carry it to students.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rationale {
    pub query_analysis: String,
    pub item_analysis: String,
    pub dimensions: Vec<Dimension>,
    pub conclusion: String,
    pub label: String,
}

impl Rationale {
    pub fn dimension(&self, name: &str) -> Option<&Dimension> {
        self.dimensions
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_cycles_through_all_four_and_parses_loosely() {
        let mut v = Verdict::Match;
        let mut seen = vec![v];
        for _ in 0..3 {
            v = v.cycle();
            seen.push(v);
        }
        assert_eq!(seen, Verdict::ALL.to_vec());
        assert_eq!(v.cycle(), Verdict::Match);
        assert_eq!(Verdict::parse("Not mentioned"), Some(Verdict::NotMentioned));
        assert_eq!(Verdict::parse("maybe"), None);
    }

    #[test]
    fn rationale_round_trips_through_json() {
        let r = Rationale {
            query_analysis: "wireless mouse".into(),
            item_analysis: "Logitech M185 wireless mouse".into(),
            dimensions: vec![Dimension {
                name: "category".into(),
                query_value: "mouse".into(),
                item_value: "mouse".into(),
                verdict: Verdict::Match,
                note: String::new(),
            }],
            conclusion: "Exact match".into(),
            label: "E".into(),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"verdict\":\"match\""));
        assert_eq!(serde_json::from_str::<Rationale>(&json).unwrap(), r);
        assert_eq!(r.dimension("Category").unwrap().verdict, Verdict::Match);
    }
}
