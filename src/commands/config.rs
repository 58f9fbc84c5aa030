//! `workbench config`: the resolved settings and where each came from.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::cli::ConfigArgs;
use crate::domain::DEFAULT_SEED;
use crate::settings::Sources;

pub fn run(db: &Path, sources: &Sources, args: ConfigArgs) -> Result<ExitCode> {
    let folders = crate::models::searched_folders();
    let holding = crate::models::holding(crate::models::TEACHER);
    let teacher = crate::models::teacher();
    let base = crate::models::student_base();
    if args.json {
        let out = json!({
            "files": sources.files.iter().map(|(f, found)| json!({"path": f, "found": found})).collect::<Vec<_>>(),
            "db": {"value": db, "source": sources.db_source},
            "models": {"searched": folders, "holding": holding, "teacher": teacher, "student_base": base},
            "seed": DEFAULT_SEED,
            "values": sources.values,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("config files (later wins):");
    for (file, found) in &sources.files {
        let state = if *found { "read" } else { "none" };
        println!("  {state:<5} {}", file.display());
    }
    println!();
    let row = |name: &str, value: &str, source: &str| {
        println!("  {name:<14} {value:<50} {source}");
    };
    row(
        "db",
        &crate::store::without_password(&db.to_string_lossy()),
        &sources.db_source,
    );
    row(
        "models",
        &holding.path.display().to_string(),
        &format!(
            "{}; searched in order: {}",
            holding.source,
            crate::models::searched()
        ),
    );
    row("teacher", &teacher.display().to_string(), exists(&teacher));
    row("student base", &base.display().to_string(), exists(&base));
    row(
        "seed",
        &DEFAULT_SEED.to_string(),
        "default of every command's --seed",
    );
    if sources.values.is_empty() {
        println!("\nno flag defaults set by a config file");
    } else {
        println!("\nflag defaults set by config files:");
        for v in &sources.values {
            let command = if v.command.is_empty() {
                "workbench".to_string()
            } else {
                format!("workbench {}", v.command)
            };
            println!(
                "  {:<40} {}",
                format!("{command} --{} {}", v.flag, v.value),
                v.file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn exists(path: &Path) -> &'static str {
    if path.exists() {
        "found"
    } else {
        "missing: scripts/fetch-models.sh fetches it"
    }
}
