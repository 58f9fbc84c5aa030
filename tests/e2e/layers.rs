//! The house plan, checked over the source: every `crate::…` path a module names points down the
//! layers (commands → features → store → domain), no feature names another feature, and the
//! small infrastructure modules (terminal conventions, the allocator, where models live) lean on
//! the domain alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layer of each top-level module: a module may name modules of lower layers only, except
/// that any feature or front end may name the infrastructure.
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "domain" => 0,
        "store" => 1,
        "audit" | "augment" | "export" | "ingest" | "student" | "teacher" | "tui" => 2,
        "commands" | "cli" | "settings" | "main" | "lib" => 3,
        "terminal" | "allocator" | "models" => return None,
        _ => panic!("src/{module}: a new top-level module; give it a layer in tests/layers.rs"),
    })
}

fn allowed(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    match (layer(from), layer(to)) {
        // Infrastructure leans on the domain alone.
        (None, _) => to == "domain",
        (Some(f), None) => f >= 2,
        (Some(f), Some(t)) => t < f || (f == 3 && t == 3),
    }
}

/// Every `crate::NAME` a Rust file names, outside comments.
fn named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        assert!(
            !code.contains("crate::{"),
            "`use crate::{{…}}` hides what a module names; name each path: {line}"
        );
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name.chars().next().unwrap().is_ascii_lowercase() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_names_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        for to in named(&std::fs::read_to_string(file).unwrap()) {
            edges
                .entry((top.clone(), to))
                .or_default()
                .push(rel.display().to_string());
        }
    }
    assert!(
        edges.contains_key(&("export".into(), "store".into())),
        "the scan sees the paths modules name"
    );
    let wrong: Vec<String> = edges
        .iter()
        .filter(|((from, to), _)| !allowed(from, to))
        .map(|((from, to), files)| format!("{from} → {to} ({})", files.join(", ")))
        .collect();
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_rule_refuses_a_feature_naming_another() {
    assert!(!allowed("export", "teacher"));
    assert!(!allowed("store", "student"));
    assert!(!allowed("domain", "store"));
    assert!(!allowed("terminal", "store"));
    assert!(allowed("tui", "store") && allowed("commands", "tui") && allowed("teacher", "models"));
    assert_eq!(
        named(
            "use crate::store::Store; // crate::tui is not named here\nlet x = crate::domain::Pair::new();"
        ),
        BTreeSet::from(["store".to_string(), "domain".to_string()])
    );
}
