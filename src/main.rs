use std::process::ExitCode;

fn main() -> ExitCode {
    workbench::terminal::quiet_broken_pipe();
    let (cli, sources) = match workbench::settings::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        Err(err) => return workbench::terminal::report_error(&err),
    };
    workbench::terminal::init_tracing();
    match workbench::commands::run(cli, sources) {
        Ok(code) => code,
        Err(err) => workbench::terminal::report_error(&err),
    }
}

/// mimalloc instead of glibc's allocator: the export's reader thread allocates rows that the
/// writer frees, and glibc serialises those frees on an arena lock. With the `override` feature
/// it also serves C's malloc, so SQLite's own allocations (a copy of every bound value on
/// import) skip glibc too. Both measured in BENCHMARKS.md (export, import).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
