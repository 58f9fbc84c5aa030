//! Files written into a temporary directory beside the destination and renamed into place at
//! the end: a reader never sees half an export, and a failed one (disk full) leaves nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

struct Sink {
    file: BufWriter<File>,
    hasher: Sha256,
    rows: u64,
}

pub struct ExportDir {
    out: PathBuf,
    tmp: PathBuf,
    sinks: BTreeMap<String, Sink>,
    /// One line's bytes, reused from row to row.
    line: Vec<u8>,
    done: bool,
    /// Also write each file as Parquet at the end.
    pub parquet: bool,
}

/// The sha256 of a file, streamed.
fn sha256_of(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

impl ExportDir {
    /// Refuses an existing destination unless `force`; nothing is touched until `finish`.
    pub fn create(out: &Path, force: bool) -> Result<ExportDir> {
        if out.exists() && !force {
            bail!(
                "{}: already exists; pass --force to replace it",
                out.display()
            );
        }
        let name = out
            .file_name()
            .with_context(|| format!("{}: not a directory name", out.display()))?;
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".partial-{}", std::process::id()));
        let tmp = parent.join(tmp_name);
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("{}: cannot write the export here", out.display()))?;
        Ok(ExportDir {
            out: out.to_path_buf(),
            tmp,
            sinks: BTreeMap::new(),
            line: Vec::with_capacity(4096),
            done: false,
            parquet: false,
        })
    }

    /// Appends one JSON line to `rel` (e.g. `train/cot.jsonl`).
    pub fn write<T: serde::Serialize + ?Sized>(&mut self, rel: &str, line: &T) -> Result<()> {
        if !self.sinks.contains_key(rel) {
            let path = self.tmp.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let file =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            self.sinks.insert(
                rel.to_string(),
                Sink {
                    file: BufWriter::with_capacity(1 << 20, file),
                    hasher: Sha256::new(),
                    rows: 0,
                },
            );
        }
        let sink = self.sinks.get_mut(rel).expect("inserted above");
        let bytes = &mut self.line;
        bytes.clear();
        serde_json::to_writer(&mut *bytes, line)?;
        bytes.push(b'\n');
        sink.hasher.update(&bytes[..]);
        sink.file
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.out.join(rel).display()))?;
        sink.rows += 1;
        Ok(())
    }

    /// Flushes and syncs every file, writes the manifest the caller builds from the per-file
    /// rows and hashes, and renames the directory into place.
    pub fn finish(
        mut self,
        manifest: impl FnOnce(&BTreeMap<String, (u64, String)>) -> serde_json::Value,
    ) -> Result<serde_json::Value> {
        let mut files = BTreeMap::new();
        for (rel, sink) in std::mem::take(&mut self.sinks) {
            let mut file = sink.file;
            file.flush()
                .with_context(|| format!("writing {}", self.out.join(&rel).display()))?;
            file.get_ref()
                .sync_all()
                .with_context(|| format!("writing {}", self.out.join(&rel).display()))?;
            files.insert(
                rel.clone(),
                (sink.rows, hex::encode(sink.hasher.finalize())),
            );
            if self.parquet {
                let prel = rel.replace(".jsonl", ".parquet");
                let dst = self.tmp.join(&prel);
                let rows = super::parquet::from_jsonl(&self.tmp.join(&rel), &dst)?;
                files.insert(prel, (rows, sha256_of(&dst)?));
            }
        }
        let m = manifest(&files);
        let path = self.tmp.join("manifest.json");
        std::fs::write(&path, serde_json::to_string_pretty(&m)? + "\n")
            .with_context(|| format!("writing {}", self.out.join("manifest.json").display()))?;
        if self.out.exists() {
            let mut old = self.tmp.clone().into_os_string();
            old.push(".old");
            std::fs::rename(&self.out, &old)
                .with_context(|| format!("moving the old {} aside", self.out.display()))?;
            std::fs::rename(&self.tmp, &self.out)
                .with_context(|| format!("renaming into {}", self.out.display()))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&self.tmp, &self.out)
                .with_context(|| format!("renaming into {}", self.out.display()))?;
        }
        self.done = true;
        Ok(m)
    }
}

impl Drop for ExportDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
