//! Where the local models are, wherever a command runs from: the folder `WORKBENCH_MODELS` names
//! (as `scripts/fetch-models.sh` takes it), else a config file's `models`, else `./models`, else the `models/` folder of the
//! checkout this binary was built from, else `$XDG_DATA_HOME/workbench/models` (by default
//! `~/.local/share/workbench/models`). The first that holds the file wins.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The folder a config file's `models` names (`settings.rs`): searched after `WORKBENCH_MODELS`.
static CONFIGURED: OnceLock<PathBuf> = OnceLock::new();

pub fn set_configured(dir: PathBuf) {
    let _ = CONFIGURED.set(dir);
}

/// The default teacher, inside a models folder.
pub const TEACHER: &str = "teacher/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The default student base (all-MiniLM-L6-v2), inside a models folder.
pub const STUDENT_BASE: &str = "student-base";

/// The folders searched, in order.
pub fn folders() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("WORKBENCH_MODELS").filter(|d| !d.is_empty()) {
        out.push(PathBuf::from(dir));
    }
    if let Some(dir) = CONFIGURED.get() {
        out.push(dir.clone());
    }
    out.push(PathBuf::from("models"));
    out.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"));
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data {
        out.push(d.join("workbench/models"));
    }
    out
}

/// `name` in the first folder that holds it; else in the first folder searched, so that the
/// error of whoever opens it names a sensible place.
pub fn locate(name: &str) -> PathBuf {
    let folders = folders();
    folders
        .iter()
        .map(|f| f.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| folders[0].join(name))
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
