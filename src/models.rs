//! Where the local models are, wherever a command runs from: the folder `WORKBENCH_MODELS` names
//! (as `scripts/fetch-models.sh` takes it), else a config file's `models`, else `./models`, else the `models/` folder of the
//! checkout this binary was built from, else `$XDG_DATA_HOME/workbench/models` (by default
//! `~/.local/share/workbench/models`). The first that holds the file wins.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The folder a config file's `models` names (`settings.rs`), and that file: searched after
/// `WORKBENCH_MODELS`.
static CONFIGURED: OnceLock<(PathBuf, String)> = OnceLock::new();

pub fn set_configured(dir: PathBuf, file: &std::path::Path) {
    let _ = CONFIGURED.set((dir, file.display().to_string()));
}

/// The default teacher, inside a models folder.
pub const TEACHER: &str = "teacher/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The default student base (all-MiniLM-L6-v2), inside a models folder.
pub const STUDENT_BASE: &str = "student-base";

/// A folder searched for models, and why it is searched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Folder {
    pub path: PathBuf,
    pub source: String,
}

/// The folders searched, in order, each with why.
pub fn searched_folders() -> Vec<Folder> {
    let mut out = Vec::new();
    let mut push = |path: PathBuf, source: &str| {
        out.push(Folder {
            path,
            source: source.to_string(),
        })
    };
    if let Some(dir) = std::env::var_os("WORKBENCH_MODELS").filter(|d| !d.is_empty()) {
        push(PathBuf::from(dir), "environment (WORKBENCH_MODELS)");
    }
    if let Some((dir, file)) = CONFIGURED.get() {
        push(dir.clone(), file);
    }
    push(PathBuf::from("models"), "the working directory");
    push(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"),
        "the checkout this binary was built from",
    );
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data {
        push(d.join("workbench/models"), "the user's data directory");
    }
    out
}

/// The folders searched, in order.
pub fn folders() -> Vec<PathBuf> {
    searched_folders().into_iter().map(|f| f.path).collect()
}

/// The first folder holding `name`, else the first folder searched.
pub fn holding(name: &str) -> Folder {
    let folders = searched_folders();
    folders
        .iter()
        .find(|f| f.path.join(name).exists())
        .unwrap_or(&folders[0])
        .clone()
}

/// `name` in the first folder that holds it; else in the first folder searched, so that the
/// error of whoever opens it names a sensible place.
pub fn locate(name: &str) -> PathBuf {
    holding(name).path.join(name)
}

pub fn teacher() -> PathBuf {
    locate(TEACHER)
}

pub fn student_base() -> PathBuf {
    locate(STUDENT_BASE)
}

/// The folders searched, for error messages.
pub fn searched() -> String {
    folders()
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
