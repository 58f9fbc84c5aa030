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
    pub attributes: serde_json::Value,
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
        let Some(map) = self.attributes.as_object() else {
            return Vec::new();
        };
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), attribute_text(v)?)))
            .collect()
    }

    /// One attribute as `attribute_lines` shows it, or `None` when it is absent or empty.
    pub fn attribute(&self, key: &str) -> Option<String> {
        attribute_text(self.attributes.as_object()?.get(key)?)
    }
}

fn attribute_text(v: &serde_json::Value) -> Option<String> {
    Some(match v {
        serde_json::Value::Null => return None,
        serde_json::Value::String(s) if s.trim().is_empty() => return None,
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(" > "),
        other => other.to_string(),
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
            attributes: json!({"category": ["Home", "Kitchen"], "color": "", "rating": 4.5, "x": null}),
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
