//! `--parquet`: each JSONL file of the export also as Parquet (snappy), for `datasets`,
//! pandas and polars. The schema is inferred from the whole JSONL file by arrow-json (columns in
//! the order the JSONL rows have them), then the rows are converted in batches: memory stays
//! flat in the number of rows.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Writes `src` (JSON lines) as the Parquet file `dst`, synced; returns the rows written.
pub fn from_jsonl(src: &Path, dst: &Path) -> Result<u64> {
    let what = || format!("writing {} as Parquet", dst.display());
    let mut reader = BufReader::with_capacity(1 << 20, File::open(src).with_context(what)?);
    let (schema, _) =
        arrow_json::reader::infer_json_schema(&mut reader, None).with_context(what)?;
    reader.rewind().with_context(what)?;
    let schema = Arc::new(schema);
    let rows = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(8192)
        .build(reader)
        .with_context(what)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("workbench".into())
        .build();
    let file = File::create(dst).with_context(what)?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).with_context(what)?;
    let mut n = 0;
    for batch in rows {
        let batch = batch.with_context(what)?;
        n += batch.num_rows() as u64;
        writer.write(&batch).with_context(what)?;
    }
    let file = writer.into_inner().with_context(what)?;
    file.sync_all().with_context(what)?;
    Ok(n)
}
