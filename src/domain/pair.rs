use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A search query as the shopper typed it; `ext_id` is the id in the imported file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub ext_id: String,
    pub text: String,
}

/// A product: title, description, brand and free-form attributes (colour, category, bullets …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub ext_id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub brand: String,
    #[serde(default)]
    pub attributes: Attributes,
}

/// The ids a pair is known by outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PairKey {
    pub query_id: String,
    pub product_id: String,
}

/// A (query, item) pair with the human gold label the import carried, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub id: i64,
    pub query: Query,
    pub item: Item,
    pub gold_label: Option<String>,
    pub split: Option<String>,
    pub origin: String,
}

impl Item {
    /// The item's attributes as `name: value` lines, the way the teacher and the TUI show them.
    /// Lists are joined with " > " (categories are paths); numbers and booleans print plainly.
    pub fn attribute_lines(&self) -> Vec<(String, String)> {
        self.attributes
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), attribute_text(v)?.into_owned())))
            .collect()
    }

    /// One attribute as `attribute_lines` shows it, or `None` when it is absent or empty.
    pub fn attribute(&self, key: &str) -> Option<Cow<'_, str>> {
        attribute_text(self.attributes.get(key)?)
    }
}

/// An item's free-form attributes (a JSON object), in the order the import gave them. A list
/// rather than a map: an item has a handful, found faster by a scan than by hashing, and building
/// a map per item was a tenth of an export's row building (BENCHMARKS.md, export).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Vec<(String, serde_json::Value)>);

impl Attributes {
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, in place when it is there already (a repeated key keeps its first place and
    /// its last value, as a JSON object read into a map does).
    fn set(&mut self, key: String, value: serde_json::Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key, value)),
        }
    }
}

/// A JSON object's entries; anything else has none.
impl From<serde_json::Value> for Attributes {
    fn from(v: serde_json::Value) -> Attributes {
        let mut out = Attributes::default();
        if let serde_json::Value::Object(map) = v {
            for (k, v) in map {
                out.set(k, v);
            }
        }
        out
    }
}

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Attributes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of attributes")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Attributes, A::Error> {
                let mut out = Attributes(Vec::with_capacity(map.size_hint().unwrap_or(4)));
                while let Some((k, v)) = map.next_entry()? {
                    out.set(k, v);
                }
                Ok(out)
            }
            fn visit_unit<E>(self) -> Result<Attributes, E> {
                Ok(Attributes::default())
            }
        }
        d.deserialize_any(Entries)
    }
}

fn attribute_text(v: &serde_json::Value) -> Option<Cow<'_, str>> {
    Some(match v {
        serde_json::Value::Null => return None,
        serde_json::Value::String(s) if s.trim().is_empty() => return None,
        serde_json::Value::String(s) => Cow::Borrowed(s),
        serde_json::Value::Array(a) => Cow::Owned(
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(Cow::Borrowed)
                        .unwrap_or_else(|| Cow::Owned(x.to_string()))
                })
                .collect::<Vec<_>>()
                .join(" > "),
        ),
        other => Cow::Owned(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attribute_lines_flatten_lists_and_skip_empties() {
        let item = Item {
            ext_id: "B1".into(),
            title: "t".into(),
            description: String::new(),
            brand: String::new(),
            attributes:
                json!({"category": ["Home", "Kitchen"], "color": "", "rating": 4.5, "x": null})
                    .into(),
        };
        assert_eq!(
            item.attribute_lines(),
            vec![
                ("category".into(), "Home > Kitchen".into()),
                ("rating".into(), "4.5".into())
            ]
        );
        assert_eq!(
            item.attribute("category").as_deref(),
            Some("Home > Kitchen")
        );
        assert_eq!(item.attribute("color"), None);
        assert_eq!(item.attribute("x"), None);
        assert_eq!(item.attribute("missing"), None);
    }
}
