use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::StatsArgs;
use crate::store::Store;

/// Checks the database (SQLite's integrity check, every derived column against its source
/// rows), repairs what disagrees and says what it repaired. Exit 1 when SQLite reports damage.
pub async fn run(db: &Path, args: StatsArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let r = store.check_and_repair().await?;
    let postgres = store.is_postgres();
    // The store's name for itself: a URL without its password.
    let name = store.path().display().to_string();
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let ids = |v: &[i64]| {
            let shown: Vec<String> = v.iter().take(10).map(i64::to_string).collect();
            let more = v.len().saturating_sub(shown.len());
            format!(
                "{}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        };
        if postgres {
            println!(
                "{name}: {} pairs checked (PostgreSQL checks its own pages)",
                r.pairs
            );
        } else {
            println!(
                "{name}: SQLite integrity {}; {} pairs checked",
                r.integrity, r.pairs
            );
        }
        if r.repaired() == 0 {
            println!("every derived column agrees with its rows: nothing to repair");
        }
        if !r.judgment_columns.is_empty() {
            println!(
                "repaired the picked judgment of {} pairs (pair ids {})",
                r.judgment_columns.len(),
                ids(&r.judgment_columns)
            );
        }
        if !r.reviewed.is_empty() {
            println!(
                "repaired the reviewed flag of {} pairs (pair ids {})",
                r.reviewed.len(),
                ids(&r.reviewed)
            );
        }
    }
    Ok(if r.integrity == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
