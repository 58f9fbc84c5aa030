//! Settings from config files, through the real binary: `workbench.toml` beside the database
//! sets a command's defaults, the command line overrides them, `workbench config` says where each
//! came from, and a bad file is named with its key.

use crate::common;

use common::*;

#[test]
fn a_project_file_sets_defaults_the_command_line_overrides_and_config_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    std::fs::write(
        d.join("workbench.toml"),
        "[export]\nformat = [\"cot\", \"soft_labels\"]\nsplit = \"by-query:50/50\"\nsource = \"human-only\"\n",
    )
    .unwrap();
    ok(d, &db, &["export", "--out", "a"]);
    let files = |out: &str| {
        let mut names: Vec<String> = std::fs::read_dir(d.join(out).join("train"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(files("a"), ["cot.jsonl", "soft_labels.jsonl"]);
    assert!(
        !d.join("a/test").exists(),
        "the file's split: train and dev only"
    );
    ok(d, &db, &["export", "--out", "b", "--format", "margin_mse"]);
    assert_eq!(files("b"), ["margin_mse.jsonl"], "the command line wins");

    let report: serde_json::Value =
        serde_json::from_str(&ok(d, &db, &["config", "--json"])).unwrap();
    let values = report["values"].as_array().unwrap();
    assert_eq!(values.len(), 3, "{report}");
    assert_eq!(values[0]["command"], "export");
    assert_eq!(values[0]["flag"], "format");
    assert_eq!(values[0]["value"], "cot,soft_labels");
    assert!(
        values[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("workbench.toml")
    );
    assert_eq!(report["db"]["source"], "command line");
    assert_eq!(report["seed"], 42);

    std::fs::write(d.join("workbench.toml"), "[export]\nformats = \"cot\"\n").unwrap();
    let bad = workbench(d, &db, &["stats"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success()
            && err.contains("workbench.toml")
            && err.contains("[export] has no setting `formats`"),
        "{err}"
    );
    let help = workbench(d, &db, &["teach", "--help"]);
    assert!(
        help.status.success()
            && String::from_utf8_lossy(&help.stdout).contains("--workers")
            && String::from_utf8_lossy(&help.stderr).contains("has no setting `formats`"),
        "help still shows, and says what is wrong with the file"
    );
}

/// A flag set by both files counts once, the project's value winning, however the key is spelt.
#[test]
fn the_project_file_overrides_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = fixture_db(d);
    let user = d.join("home-config");
    std::fs::create_dir_all(user.join("workbench")).unwrap();
    std::fs::write(
        user.join("workbench/config.toml"),
        "[export]\nmax-pairs-per-query = 5\nnegatives = 2\n",
    )
    .unwrap();
    std::fs::write(
        d.join("workbench.toml"),
        "[export]\nmax_pairs_per_query = 7\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .current_dir(d)
        .args(["--db", db.to_str().unwrap(), "config", "--json"])
        .env("XDG_CONFIG_HOME", &user)
        .env_remove("WORKBENCH_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let values = report["values"].as_array().unwrap();
    let of = |flag: &str| -> Vec<&serde_json::Value> {
        values.iter().filter(|v| v["flag"] == flag).collect()
    };
    let max = of("max-pairs-per-query");
    assert_eq!(max.len(), 1, "{report}");
    assert_eq!(max[0]["value"], "7");
    assert!(max[0]["file"].as_str().unwrap().ends_with("workbench.toml"));
    assert_eq!(
        of("negatives")[0]["value"],
        "2",
        "the user's other setting stays"
    );
}
