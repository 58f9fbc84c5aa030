//! Settings, resolved once before a command runs. Every flag's default can come from a config
//! file; later sources win:
//!
//! 1. the built-in default (`--help` shows it);
//! 2. the user's file, `$XDG_CONFIG_HOME/workbench/config.toml` (`~/.config/…`);
//! 3. the project's file, `workbench.toml` beside the database;
//! 4. the environment, for the flags that name a variable (`WORKBENCH_DB`, …);
//! 5. the command line.
//!
//! A file's top-level keys are the global flags (`db`) and `models` (a folder searched first for
//! the local models); a table is a command, its keys that command's long flags:
//!
//! ```toml
//! models = "/data/models"
//! [teach]
//! mode = "score"
//! workers = 2
//! [student.train]
//! epochs = 30
//! [review]
//! annotator = "ana"
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use serde::Serialize;

use crate::cli::Cli;

/// The project's config file, beside the database.
pub const PROJECT_FILE: &str = "workbench.toml";

/// One value a config file set: the command (`teach`, `student train`; empty for the global
/// flags), the flag, the value and the file.
#[derive(Debug, Clone, Serialize)]
pub struct FileValue {
    pub command: String,
    pub flag: String,
    pub value: String,
    pub file: PathBuf,
    /// Whether it is what the command runs with (a later file, the environment or the command
    /// line may override it; only the running command's flags are known here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<bool>,
}

/// What went into the resolved flags: the files looked for (and whether each was there), every
/// value they set, and `models` from them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sources {
    pub files: Vec<(PathBuf, bool)>,
    pub values: Vec<FileValue>,
    pub models: Option<(PathBuf, PathBuf)>,
    /// Where `--db` came from: `default`, `environment (WORKBENCH_DB)`, `command line` or a file.
    pub db_source: String,
}

/// The user's config file.
pub fn user_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("workbench/config.toml"))
}

/// Parses the command line (`args`, the program name first) with each flag's default taken
/// from the config files; exits as clap does on `--help`, `--version` or a bad flag.
pub fn parse(args: Vec<OsString>) -> Result<(Cli, Sources)> {
    // The database first (command line, environment, default): the project file is beside it.
    let first = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(&args)
        .ok();
    let db = first
        .as_ref()
        .and_then(|m| m.get_one::<PathBuf>("db").cloned())
        .unwrap_or_else(|| PathBuf::from("workbench.db"));
    let project = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(PROJECT_FILE);
    let mut sources = Sources::default();
    let mut cmd = Cli::command();
    for file in user_file().into_iter().chain([project]) {
        let exists = file.is_file();
        sources.files.push((file.clone(), exists));
        if !exists {
            continue;
        }
        let applied = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))
            .and_then(|text| {
                toml::from_str::<toml::Table>(&text).map_err(|e| {
                    anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end())
                })
            })
            .and_then(|table| apply(cmd.clone(), &table, &[], &file, &mut sources));
        match applied {
            Ok(with_file) => cmd = with_file,
            // Help and the version still show, so a user can read how to fix the file.
            Err(e) if asks_for_help(&args) => eprintln!("warning: {e:#}"),
            Err(e) => return Err(e),
        }
    }
    let matches = cmd.get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    sources.db_source = source_of(&matches, "db", &sources, "");
    mark_used(&matches, &mut sources);
    if let Some((dir, file)) = &sources.models {
        crate::models::set_configured(dir.clone(), file);
    }
    Ok((cli, sources))
}

fn asks_for_help(args: &[OsString]) -> bool {
    args.iter().skip(1).any(|a| {
        ["--help", "-h", "--version", "-V", "help"]
            .iter()
            .any(|h| a.as_os_str() == *h)
    })
}

/// Sets each key of `table` as the default of its flag on the command at `path` (nested tables
/// are subcommands).
fn apply(
    mut cmd: clap::Command,
    table: &toml::Table,
    path: &[String],
    file: &Path,
    sources: &mut Sources,
) -> Result<clap::Command> {
    let here = path.join(" ");
    for (key, value) in table {
        if let toml::Value::Table(inner) = value {
            let mut sub_path = path.to_vec();
            sub_path.push(key.clone());
            let Some(sub) = cmd.find_subcommand(key).cloned() else {
                bail!(
                    "{}: [{}] is not a command (see `workbench --help`)",
                    file.display(),
                    sub_path.join(".")
                );
            };
            let sub = apply(sub, inner, &sub_path, file, sources)?;
            cmd = cmd.mut_subcommand(key, |_| sub);
            continue;
        }
        if path.is_empty() && key == "models" {
            let dir = PathBuf::from(scalar(value, file, key)?);
            sources.models = Some((dir, file.to_path_buf()));
            continue;
        }
        // clap's id is the field's name; the file may spell the flag either way.
        let id = key.replace('-', "_");
        let flag = key.replace('_', "-");
        let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == id.as_str()) else {
            bail!(
                "{}: {} has no setting `{key}`; settings are the long flags of `workbench {}--help`",
                file.display(),
                if here.is_empty() {
                    "the top level".to_string()
                } else {
                    format!("[{}]", path.join("."))
                },
                if here.is_empty() {
                    String::new()
                } else {
                    format!("{here} ")
                }
            );
        };
        if arg.is_positional() {
            bail!(
                "{}: `{key}` of [{}] is an argument, not a flag: give it on the command line",
                file.display(),
                path.join(".")
            );
        }
        let text = scalar(value, file, key)?;
        // clap keeps defaults for the life of the process, as `&'static str`; a handful of
        // short strings, once per run.
        let leaked: &'static str = Box::leak(text.clone().into_boxed_str());
        cmd = cmd.mut_arg(id.as_str(), |a| a.default_value(leaked));
        // A later file's value replaces an earlier one's.
        sources
            .values
            .retain(|v| !(v.command == here && v.flag == flag));
        sources.values.push(FileValue {
            command: here.clone(),
            flag,
            value: text,
            file: file.to_path_buf(),
            used: None,
        });
    }
    Ok(cmd)
}

/// A value as the command line would give it: lists joined by commas.
fn scalar(value: &toml::Value, file: &Path, key: &str) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| scalar(v, file, key))
            .collect::<Result<Vec<_>>>()?
            .join(","),
        _ => bail!(
            "{}: `{key}` must be a string, number, boolean or list",
            file.display()
        ),
    })
}

/// Where the running command's flag `id` came from.
fn source_of(matches: &ArgMatches, id: &str, sources: &Sources, command: &str) -> String {
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => "command line".into(),
        Some(ValueSource::EnvVariable) => "environment".into(),
        _ => sources
            .values
            .iter()
            .find(|v| v.command == command && v.flag.replace('-', "_") == id)
            .map_or("default".into(), |v| v.file.display().to_string()),
    }
}

/// Marks which file values the running command took (its own flags, and the global ones).
fn mark_used(matches: &ArgMatches, sources: &mut Sources) {
    let mut path = Vec::new();
    let mut m = matches;
    let mut levels = vec![(String::new(), m)];
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        levels.push((path.join(" "), sub));
        m = sub;
    }
    for v in &mut sources.values {
        let id = v.flag.replace('-', "_");
        if let Some((_, m)) = levels.iter().find(|(c, _)| *c == v.command) {
            v.used = Some(matches!(
                m.value_source(&id),
                Some(ValueSource::DefaultValue)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(dir: &Path, project: &str, args: &[&str]) -> Result<(Cli, Sources)> {
        std::fs::write(dir.join(PROJECT_FILE), project).unwrap();
        let db = dir.join("w.db");
        let mut all: Vec<OsString> = vec!["workbench".into(), "--db".into(), db.into()];
        all.extend(args.iter().map(OsString::from));
        parse(all)
    }

    #[test]
    fn a_project_file_sets_defaults_that_the_command_line_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = "[teach]\nmode = \"score\"\nworkers = 3\n[student.train]\nepochs = 7\nencoder = \"fine-tune\"\n";
        let (cli, sources) = parse_with(dir.path(), file, &["teach", "--workers", "1"]).unwrap();
        let Some(crate::cli::Command::Teach(t)) = cli.command else {
            panic!("teach")
        };
        assert_eq!(t.mode, crate::cli::TeachMode::Score, "from the file");
        assert_eq!(t.workers, Some(1), "the command line wins");
        let used = |flag: &str| sources.values.iter().find(|v| v.flag == flag).unwrap().used;
        assert_eq!((used("mode"), used("workers")), (Some(true), Some(false)));
        assert_eq!(used("epochs"), None, "another command's setting");
        let (cli, _) = parse_with(dir.path(), file, &["student", "train"]).unwrap();
        let Some(crate::cli::Command::Student(crate::cli::StudentCommand::Train(t))) = cli.command
        else {
            panic!("student train")
        };
        assert_eq!(t.epochs, Some(7));
        assert_eq!(t.encoder, crate::cli::EncoderArg::FineTune);
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = parse_with(dir.path(), "[teach]\nworkerz = 2\n", &["stats"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("workbench.toml") && err.contains("[teach] has no setting `workerz`"),
            "{err}"
        );
        let err = parse_with(dir.path(), "[tech]\nworkers = 2\n", &["stats"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("[tech] is not a command"), "{err}");
        let err = parse_with(dir.path(), "[teach\nworkers = 2\n", &["stats"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("workbench.toml") && err.contains("line 1"),
            "{err}"
        );
    }
}
