//! Files written into a temporary directory beside the destination and renamed into place at
//! the end: a reader never sees half an export, and a failed one (disk full) leaves nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Bytes gathered per file before they go to the sink thread.
const SINK_CHUNK: usize = 1 << 20;
/// Chunks on their way to the sink thread: bounds memory whatever the disk's speed.
const SINK_IN_FLIGHT: usize = 4;

/// What the export's thread tells the sink thread.
enum SinkMsg {
    /// The next file, numbered in the order opened, shown to the user as `shown`.
    Open(File, PathBuf),
    /// Append these bytes to file number `n`.
    Write(usize, Vec<u8>),
}

/// A file the sink thread writes and hashes.
struct OpenFile {
    file: File,
    shown: PathBuf,
    hasher: Sha256,
}

/// Hashing and writing run on a thread of their own, so that the row building beside them and
/// SQLite's reader thread share both cores (the export's thread was the busy one).
struct SinkThread {
    tx: std::sync::mpsc::SyncSender<SinkMsg>,
    /// Emptied buffers coming back, to be filled again.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    handle: std::thread::JoinHandle<Result<Vec<OpenFile>>>,
}

impl SinkThread {
    fn start() -> SinkThread {
        let (tx, rx) = std::sync::mpsc::sync_channel::<SinkMsg>(SINK_IN_FLIGHT);
        let (spare_tx, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let handle = std::thread::spawn(move || -> Result<Vec<OpenFile>> {
            let mut files: Vec<OpenFile> = Vec::new();
            for msg in rx {
                match msg {
                    SinkMsg::Open(file, shown) => {
                        files.push(OpenFile {
                            file,
                            shown,
                            hasher: Sha256::new(),
                        });
                    }
                    SinkMsg::Write(n, mut bytes) => {
                        let f = &mut files[n];
                        f.hasher.update(&bytes);
                        f.file
                            .write_all(&bytes)
                            .with_context(|| format!("writing {}", f.shown.display()))?;
                        bytes.clear();
                        let _ = spare_tx.send(bytes);
                    }
                }
            }
            Ok(files)
        });
        SinkThread { tx, spare, handle }
    }

    /// Waits for every byte to be written; the files in the order they were opened.
    fn join(self) -> Result<Vec<OpenFile>> {
        drop(self.tx);
        match self.handle.join() {
            Ok(done) => done,
            Err(_) => bail!("the export's writer thread panicked"),
        }
    }
}

/// A file being written: its number at the sink thread, the bytes not yet handed on.
struct Pending {
    n: usize,
    bytes: Vec<u8>,
    rows: u64,
}

pub struct ExportDir {
    out: PathBuf,
    tmp: PathBuf,
    sinks: BTreeMap<String, Pending>,
    thread: Option<SinkThread>,
    done: bool,
    /// Also write each file as Parquet at the end.
    pub parquet: bool,
}

/// The sha256 of a file, streamed.
/// Swaps two paths atomically (Linux `renameat2` with `RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).expect("no NUL in paths");
    let (a, b) = (c(a), c(b));
    // SAFETY: two valid NUL-terminated paths, resolved against the working directory.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes the temporary directories of exports to the same destination whose process is gone
/// (a killed export cannot clean up after itself); a running export's directory is left alone.
fn remove_dead_exports(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

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
        let prefix = format!(".{}.partial-", name.to_string_lossy());
        remove_dead_exports(parent, &prefix);
        let tmp = parent.join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("{}: cannot write the export here", out.display()))?;
        Ok(ExportDir {
            out: out.to_path_buf(),
            tmp,
            sinks: BTreeMap::new(),
            thread: Some(SinkThread::start()),
            done: false,
            parquet: false,
        })
    }

    /// Appends one JSON line to `rel` (e.g. `train/cot.jsonl`).
    pub fn write<T: serde::Serialize + ?Sized>(&mut self, rel: &str, line: &T) -> Result<()> {
        self.write_with(rel, |bytes| serde_json::to_writer(bytes, line))
    }

    /// Appends one line to `rel` that `line` writes as JSON itself.
    pub fn write_with(
        &mut self,
        rel: &str,
        line: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Result<()> {
        if !self.sinks.contains_key(rel) {
            let path = self.tmp.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let file =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let n = self.sinks.len();
            self.send(SinkMsg::Open(file, self.out.join(rel)))?;
            self.sinks.insert(
                rel.to_string(),
                Pending {
                    n,
                    bytes: Vec::with_capacity(SINK_CHUNK + 4096),
                    rows: 0,
                },
            );
        }
        let sink = self.sinks.get_mut(rel).expect("inserted above");
        line(&mut sink.bytes)?;
        sink.bytes.push(b'\n');
        sink.rows += 1;
        if sink.bytes.len() >= SINK_CHUNK {
            let spare = self.thread.as_ref().and_then(|t| t.spare.try_recv().ok());
            let next = spare.unwrap_or_else(|| Vec::with_capacity(SINK_CHUNK + 4096));
            let full = std::mem::replace(&mut sink.bytes, next);
            let n = sink.n;
            self.send(SinkMsg::Write(n, full))?;
        }
        Ok(())
    }

    /// Hands `msg` to the sink thread; if that has stopped, its error (a full disk, say).
    fn send(&mut self, msg: SinkMsg) -> Result<()> {
        let Some(thread) = self.thread.as_ref() else {
            bail!("the export's writer thread has stopped");
        };
        if thread.tx.send(msg).is_ok() {
            return Ok(());
        }
        let stopped = self.thread.take().expect("checked above");
        stopped.join()?;
        bail!("the export's writer thread stopped")
    }

    /// Flushes and syncs every file, writes the manifest the caller builds from the per-file
    /// rows and hashes, and renames the directory into place.
    pub fn finish(
        mut self,
        manifest: impl FnOnce(&BTreeMap<String, (u64, String)>) -> (serde_json::Value, String),
    ) -> Result<serde_json::Value> {
        let mut sinks = std::mem::take(&mut self.sinks);
        for sink in sinks.values_mut() {
            if !sink.bytes.is_empty() {
                self.send(SinkMsg::Write(sink.n, std::mem::take(&mut sink.bytes)))?;
            }
        }
        let thread = self
            .thread
            .take()
            .context("the export's writer thread has stopped")?;
        let mut opened = thread.join()?;
        let mut files = BTreeMap::new();
        for (rel, sink) in sinks {
            let f = &mut opened[sink.n];
            f.file
                .sync_all()
                .with_context(|| format!("writing {}", f.shown.display()))?;
            let hash = std::mem::take(&mut f.hasher).finalize();
            files.insert(rel.clone(), (sink.rows, hex::encode(hash)));
            if self.parquet {
                let prel = rel.replace(".jsonl", ".parquet");
                let dst = self.tmp.join(&prel);
                let rows = super::parquet::from_jsonl(&self.tmp.join(&rel), &dst)?;
                files.insert(prel, (rows, sha256_of(&dst)?));
            }
        }
        let (m, card) = manifest(&files);
        let path = self.tmp.join("manifest.json");
        std::fs::write(&path, serde_json::to_string_pretty(&m)? + "\n")
            .with_context(|| format!("writing {}", self.out.join("manifest.json").display()))?;
        std::fs::write(self.tmp.join("README.md"), card)
            .with_context(|| format!("writing {}", self.out.join("README.md").display()))?;
        if self.out.exists() {
            // One atomic exchange: the destination is the old export or the new one, never
            // neither, whenever the process dies.
            exchange(&self.tmp, &self.out)
                .with_context(|| format!("renaming into {}", self.out.display()))?;
            let _ = std::fs::remove_dir_all(&self.tmp);
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
        if let Some(thread) = self.thread.take() {
            let _ = thread.join(); // no write may land after the removal
        }
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
