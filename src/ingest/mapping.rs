use std::path::Path;

use anyhow::{Context, Result, bail};

/// Which column of the input holds each field. Defaults follow the ESCI files
/// (`query_id, query, product_id, title, description, brand, attributes, esci_label`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMap {
    pub query_id: String,
    pub query: String,
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub brand: String,
    pub attributes: String,
    pub label: String,
    pub split: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap {
            query_id: "query_id".into(),
            query: "query".into(),
            product_id: "product_id".into(),
            title: "title".into(),
            description: "description".into(),
            brand: "brand".into(),
            attributes: "attributes".into(),
            label: "esci_label".into(),
            split: "split".into(),
        }
    }
}

pub const FIELDS: [&str; 9] = [
    "query_id",
    "query",
    "product_id",
    "title",
    "description",
    "brand",
    "attributes",
    "label",
    "split",
];

impl FieldMap {
    /// `--map` takes `field=column` pairs separated by commas (`query=search_term,label=grade`),
    /// or the path of a file with one `field = "column"` per line (TOML).
    pub fn parse(spec: &str) -> Result<FieldMap> {
        let path = Path::new(spec);
        if path.is_file() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading mapping file {spec}"))?;
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("{spec}: not a TOML mapping"))?;
            let mut map = FieldMap::default();
            for (field, column) in table {
                let Some(column) = column.as_str() else {
                    bail!("{spec}: {field}: the column name must be a string");
                };
                map.set(&field, column).with_context(|| spec.to_string())?;
            }
            return Ok(map);
        }
        let mut map = FieldMap::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((field, column)) = part.split_once('=') else {
                bail!("--map {part:?}: expected field=column, e.g. query=search_term");
            };
            map.set(field.trim(), column.trim())?;
        }
        Ok(map)
    }

    fn set(&mut self, field: &str, column: &str) -> Result<()> {
        let slot = match field {
            "query_id" => &mut self.query_id,
            "query" => &mut self.query,
            "product_id" => &mut self.product_id,
            "title" => &mut self.title,
            "description" => &mut self.description,
            "brand" => &mut self.brand,
            "attributes" => &mut self.attributes,
            "label" => &mut self.label,
            "split" => &mut self.split,
            other => bail!(
                "unknown field {other:?} in the mapping; fields are {}",
                FIELDS.join(", ")
            ),
        };
        *slot = column.to_string();
        Ok(())
    }

    /// The columns this map reads, for telling which CSV columns are extra attributes.
    pub fn columns(&self) -> [&str; 9] {
        [
            &self.query_id,
            &self.query,
            &self.product_id,
            &self.title,
            &self.description,
            &self.brand,
            &self.attributes,
            &self.label,
            &self.split,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_map_renames_fields_and_rejects_unknown_ones() {
        let m = FieldMap::parse("query=search_term, label=grade").unwrap();
        assert_eq!(m.query, "search_term");
        assert_eq!(m.label, "grade");
        assert_eq!(m.title, "title");
        assert!(
            FieldMap::parse("colour=c")
                .unwrap_err()
                .to_string()
                .contains("unknown field \"colour\"")
        );
        assert!(FieldMap::parse("query").is_err());
    }

    #[test]
    fn mapping_file_is_toml() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("map.toml");
        std::fs::write(&p, "title = \"product_title\"\nquery = \"q\"\n").unwrap();
        let m = FieldMap::parse(p.to_str().unwrap()).unwrap();
        assert_eq!((m.title.as_str(), m.query.as_str()), ("product_title", "q"));
    }
}
