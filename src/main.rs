use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    workbench::ui::quiet_broken_pipe();
    let cli = workbench::cli::Cli::parse();
    workbench::ui::init_tracing();
    match workbench::commands::run(cli) {
        Ok(code) => code,
        Err(err) => workbench::ui::report_error(&err),
    }
}

/// mimalloc instead of glibc's allocator: the export's reader thread allocates rows that the
/// writer frees, and glibc serialised those frees on an arena lock (soft_labels export of 1M
/// pairs: 113k → 234–266k rows/s; BENCHMARKS.md). With the `override` feature it also serves
/// C's malloc, so SQLite's own allocations (a copy of every bound value on import) skip glibc too
/// (1M-row import: 9.4–10.8 → 7.6–8.7 s; BENCHMARKS.md, import).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
