//! `workbench augment`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::augment::{self, AugmentOptions, Strategy};
use crate::cli::AugmentArgs;
use crate::store::Store;

pub async fn run(db: &Path, args: AugmentArgs) -> Result<ExitCode> {
    if args.per_query == 0 {
        bail!("--per-query must be at least 1");
    }
    let opts = AugmentOptions {
        per_query: args.per_query,
        strategies: {
            let mut named: Vec<Strategy> = Vec::new();
            for s in args.strategy {
                if !named.contains(&s) {
                    named.push(s);
                }
            }
            named
        },
        seed: args.seed,
    };
    let store = Store::open(db).await?;
    let bar = crate::terminal::progress(
        0,
        "{spinner} augmenting query {pos}/{len} {wide_bar} eta {eta}",
    );
    let report = augment::augment(&store, &opts, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let added: u64 = report.added.values().sum();
    println!(
        "{added} new augmented pairs over {} queries ({} chosen pairs were there already)",
        report.queries, report.existing
    );
    for (s, n) in &report.added {
        println!("  {n:>8}  {s}");
    }
    if report.short_queries > 0 {
        println!(
            "{} queries got fewer than {} pairs: the catalog has too few candidates",
            report.short_queries, args.per_query
        );
    }
    println!("next: workbench teach --only augmented --mode score");
    Ok(ExitCode::SUCCESS)
}
