//! Checks a GGUF file before mistral.rs loads it: the loader panics on an architecture it does
//! not support (measured with gemma3), so the header is read here first and the error says
//! which architectures are supported.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};

/// What mistral.rs 0.8's GGUF loader can run.
pub const SUPPORTED_ARCHITECTURES: [&str; 8] = [
    "llama",
    "mistral3",
    "phi2",
    "phi3",
    "starcoder2",
    "qwen2",
    "qwen3",
    "qwen3moe",
];

/// What the header of a GGUF file says.
#[derive(Debug, Clone)]
pub struct GgufInfo {
    pub architecture: String,
    pub context_length: Option<u64>,
    /// Token ids that end a turn or the text: generation must stop at any of them.
    pub stop_token_ids: Vec<u32>,
    /// For each token id, whether its text holds a double quote: where a JSON string starts
    /// or ends, a repeat stops counting (see `repetition`).
    pub quote_tokens: Vec<bool>,
    /// What `workbench teacher tune` wrote about the fine-tuning, when it made this file.
    pub tuned: Option<serde_json::Value>,
}

impl GgufInfo {
    /// Whether `workbench teacher tune --evidence` wrote this file: it learnt its answers to
    /// requests that name the query's missing words, and is asked the same way.
    pub fn tuned_with_evidence(&self) -> bool {
        self.tuned
            .as_ref()
            .and_then(|t| t.get("evidence"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether this file is a label head on a cut network (`workbench teacher tune` in score
    /// mode, or `--probe-depth`), which answers labels and nothing else.
    pub fn labels_only(&self) -> bool {
        self.tuned
            .as_ref()
            .is_some_and(|t| t.get("probe_depth").is_some())
    }
}

/// Metadata key of a fine-tuned model: a JSON object naming its source, data and settings.
pub const TUNED: &str = "workbench.tuned";

/// Opens a GGUF file and reads its header, with errors that name the file.
pub fn open(path: &Path) -> Result<(BufReader<File>, gguf_file::Content)> {
    let file = File::open(path).with_context(|| {
        format!(
            "teacher model {}: cannot open it (scripts/fetch-models.sh fetches the default; \
             without --model it is looked for in {})",
            path.display(),
            crate::models::searched()
        )
    })?;
    let mut reader = BufReader::new(file);
    let content = gguf_file::Content::read(&mut reader)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("teacher model {}: not a readable GGUF file", path.display()))?;
    Ok((reader, content))
}

pub fn inspect(path: &Path) -> Result<GgufInfo> {
    let (_, content) = open(path)?;
    let md = &content.metadata;
    let architecture = md
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .with_context(|| {
            format!(
                "teacher model {}: GGUF header has no general.architecture",
                path.display()
            )
        })?;
    if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
        bail!(
            "teacher model {}: architecture {architecture:?} is not supported by the local backend; \
             supported: {} (or serve it with an OpenAI-compatible server and use --endpoint)",
            path.display(),
            SUPPORTED_ARCHITECTURES.join(", ")
        );
    }
    let context_length = md
        .get(&format!("{architecture}.context_length"))
        .and_then(|v| v.to_u64().ok().or_else(|| v.to_u32().ok().map(u64::from)));
    let mut stop_token_ids = Vec::new();
    let mut quote_tokens = Vec::new();
    if let Some(eos) = md
        .get("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.to_u32().ok())
    {
        stop_token_ids.push(eos);
    }
    // Under a JSON constraint the grammar may end on the text-end token while generation only
    // stops on the turn-end token; without stopping on both, the output pads to the token limit.
    if let Some(tokens) = md
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.to_vec().ok())
    {
        quote_tokens = tokens
            .iter()
            .map(|t| t.to_string().is_ok_and(|s| s.contains('"')))
            .collect();
        for (id, t) in tokens.iter().enumerate() {
            if let Ok(s) = t.to_string()
                && matches!(
                    s.as_str(),
                    "<|endoftext|>"
                        | "<|im_end|>"
                        | "</s>"
                        | "<|end_of_text|>"
                        | "<|eot_id|>"
                        | "<|end|>"
                )
                && !stop_token_ids.contains(&(id as u32))
            {
                stop_token_ids.push(id as u32);
            }
        }
    }
    let tuned = md
        .get(TUNED)
        .and_then(|v| v.to_string().ok())
        .and_then(|s| serde_json::from_str(s).ok());
    Ok(GgufInfo {
        tuned,
        architecture,
        context_length,
        stop_token_ids,
        quote_tokens,
    })
}

/// The weight format the local teacher runs in. candle 0.10's CPU kernels have no SIMD path for
/// Q4_0/Q4_1/Q5_0/Q5_1 (their `vec_dot` is the scalar loop), so those files are converted once,
/// next to the original, into a format that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Weights {
    /// Run the file as it is.
    #[value(name = "as-is")]
    AsIs,
    /// Q4/Q5 block types requantised to Q8_0 (the default: measured fastest, same answers).
    #[value(name = "q8_0")]
    Q8_0,
    /// Every matrix dequantised to f32 (candle then uses its gemm; large and slow to decode).
    #[value(name = "f32")]
    F32,
}

impl Weights {
    fn dtype(self) -> Option<GgmlDType> {
        match self {
            Weights::AsIs => None,
            Weights::Q8_0 => Some(GgmlDType::Q8_0),
            Weights::F32 => Some(GgmlDType::F32),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Weights::AsIs => "",
            Weights::Q8_0 => "Q8_0",
            Weights::F32 => "F32",
        }
    }
}

/// Block types candle's CPU kernels run without SIMD.
fn slow_on_cpu(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
    )
}

/// The file the teacher should load for `weights`: `path` itself when nothing needs converting,
/// else a converted copy beside it (`NAME.prepared-Q8_0.gguf`), written once (to a temporary
/// name of this process, then renamed, so a killed conversion or a concurrent one leaves nothing
/// half-written behind). `note`
/// receives one line when a conversion runs.
pub fn prepare(path: &Path, weights: Weights, note: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let Some(target) = weights.dtype() else {
        return Ok(path.to_path_buf());
    };
    let (mut reader, content) = open(path)?;
    let convert = |d: GgmlDType| match weights {
        Weights::F32 => d != GgmlDType::F32,
        _ => slow_on_cpu(d),
    };
    if !content.tensor_infos.values().any(|t| convert(t.ggml_dtype)) {
        return Ok(path.to_path_buf());
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let out = path.with_file_name(format!("{stem}.prepared-{}.gguf", weights.suffix()));
    // The copy names the source it was made from (size and modification time): a replaced
    // source file is prepared again rather than answered with stale weights.
    let source = source_stamp(path)?;
    if prepared_from(&out).as_deref() == Some(source.as_str()) {
        return Ok(out);
    }
    let started = std::time::Instant::now();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    let device = candle_core::Device::Cpu;
    for name in names {
        let info = &content.tensor_infos[name];
        let q = content
            .tensor(&mut reader, name, &device)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("teacher model {}: tensor {name}", path.display()))?;
        let shape_ok = info
            .shape
            .dims()
            .last()
            .is_some_and(|d| d % target.block_size() == 0);
        let q = if convert(info.ggml_dtype) && shape_ok {
            let t = q.dequantize(&device).map_err(|e| anyhow::anyhow!("{e}"))?;
            QTensor::quantize(&t, target).map_err(|e| anyhow::anyhow!("{e}"))?
        } else {
            q
        };
        tensors.push((name.as_str(), q));
    }
    let stamp = gguf_file::Value::String(source);
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .chain([(PREPARED_FROM, &stamp)])
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    write(&out, &metadata, &refs)
        .with_context(|| format!("writing the prepared teacher weights {}", out.display()))?;
    note(&format!(
        "prepared the teacher's weights once for this CPU: {} → {} ({:.1} s)",
        path.display(),
        out.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(out)
}

/// Writes a GGUF file whole or not at all: to a temporary name of this write's own, synced,
/// then renamed. Two writers of one file at once (parallel tests preparing a fresh models/ did)
/// each write a whole copy, and the renames are atomic; with one shared name, the second
/// truncated the first's file under its reader.
pub fn write(
    out: &Path,
    metadata: &[(&str, &gguf_file::Value)],
    tensors: &[(&str, &QTensor)],
) -> Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let part = out.with_extension(format!("gguf.{}-{n}.part", std::process::id()));
    let written = (|| -> Result<()> {
        let mut w = std::io::BufWriter::new(
            File::create(&part).with_context(|| format!("creating {}", part.display()))?,
        );
        gguf_file::write(&mut w, metadata, tensors).map_err(|e| anyhow::anyhow!("{e}"))?;
        use std::io::Write;
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, out)?;
    Ok(())
}

/// Metadata key of a prepared copy: the stamp of the file it was made from.
const PREPARED_FROM: &str = "workbench.prepared_from";

/// What a model file's weights are: for a prepared copy, the stamp of the file it was made from
/// (another run may make it again, the same weights in a new file); for any other file, its own
/// stamp. Missing or unreadable, an error.
pub(crate) fn weights_identity(path: &Path) -> Result<String> {
    match prepared_from(path) {
        Some(from) => Ok(from),
        None => source_stamp(path),
    }
}

/// A file's size and modification time.
fn source_stamp(path: &Path) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("teacher model {}", path.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{} bytes, modified {modified}", meta.len()))
}

/// The source stamp a prepared copy carries, if it is a readable GGUF file with one.
fn prepared_from(path: &Path) -> Option<String> {
    let mut reader = BufReader::new(File::open(path).ok()?);
    let content = gguf_file::Content::read(&mut reader).ok()?;
    content
        .metadata
        .get(PREPARED_FROM)
        .and_then(|v| v.to_string().ok())
        .cloned()
}
