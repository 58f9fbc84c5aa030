//! Developer probe: how fast the JSONL reader alone goes. `cargo run --example parse_only -- FILE`
fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap();
    let t = std::time::Instant::now();
    let reader = workbench::ingest::RowReader::open(
        std::path::Path::new(&path),
        Default::default(),
        workbench::domain::LabelScale::esci(),
    )?;
    let n = reader.filter(|r| matches!(r, Ok(Ok(_)))).count();
    println!(
        "{n} rows in {:.1}s: {:.0} rows/s",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    Ok(())
}
