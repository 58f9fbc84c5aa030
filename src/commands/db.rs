use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::CopyArgs;
use crate::store::Store;

/// `workbench db copy`: the project at `--from` into the new or empty database at `--to`.
pub async fn copy(args: CopyArgs) -> Result<ExitCode> {
    if args.from == args.to {
        bail!("--from and --to name the same database");
    }
    let from = Store::open(&args.from).await?;
    let to = Store::create(&args.to).await?;
    let (from_name, to_name) = (
        from.path().display().to_string(),
        to.path().display().to_string(),
    );
    let bar = crate::terminal::progress(
        crate::store::copy::COPIED.len() as u64,
        "{spinner} copying table {pos}/{len} {wide_bar} {msg}",
    );
    let copied = from
        .copy_to(&to, &mut |table, rows| {
            bar.inc(1);
            bar.set_message(format!("{table}: {rows} rows"));
        })
        .await;
    bar.finish_and_clear();
    from.close().await;
    to.close().await;
    let copied = copied?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&copied)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("copied {from_name} to {to_name}; every table checked on both sides:");
    println!(
        "  {:<16} {:>10}  hash (SHA-256 of the rows)",
        "table", "rows"
    );
    for t in &copied {
        println!("  {:<16} {:>10}  {}", t.table, t.rows, &t.hash[..16]);
    }
    Ok(ExitCode::SUCCESS)
}
