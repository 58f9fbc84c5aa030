//! One function per command. Each opens what it needs, does its job through the store and the
//! model layers, and prints; `main.rs` only dispatches here.

mod audit;
mod augment;
mod bench;
mod check;
mod config;
mod db;
mod export;
mod import;
mod init;
mod review;
mod show;
mod stats;
mod student;
mod teach;
mod teacher;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{BenchCommand, Cli, Command, DbCommand};

pub use import::import_file;

pub fn run(cli: Cli, sources: crate::settings::Sources) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let command = cli.command.unwrap_or(Command::Review(Default::default()));
        match command {
            Command::Init(args) => init::run(&cli.db, args).await,
            Command::Db(DbCommand::Copy(args)) => db::copy(args).await,
            Command::Config(args) => config::run(&cli.db, &sources, args),
            Command::Import(args) => import::run(&cli.db, args).await,
            Command::Stats(args) => stats::run(&cli.db, args).await,
            Command::Check(args) => check::run(&cli.db, args).await,
            Command::Teach(args) => teach::run(&cli.db, args).await,
            Command::Show(args) => show::run(&cli.db, args).await,
            Command::Export(args) => export::run(&cli.db, args).await,
            Command::Review(args) => review::run(&cli.db, args).await,
            Command::Student(c) => student::run(&cli.db, c).await,
            Command::Teacher(c) => teacher::run(&cli.db, c).await,
            Command::Compare(args) => student::compare(&cli.db, args).await,
            Command::Augment(args) => augment::run(&cli.db, args).await,
            Command::Audit(args) => audit::run(&cli.db, args).await,
            Command::Metrics(args) => audit::metrics(&cli.db, args).await,
            Command::Report(args) => audit::report(&cli.db, args).await,
            Command::Bench(BenchCommand::Import {
                rows,
                dir,
                compact,
                postgres,
            }) => bench::import(rows, &dir, compact, postgres.as_deref()).await,
            Command::Bench(BenchCommand::Export {
                dir,
                runs,
                postgres,
            }) => bench::export(&dir, runs, postgres.as_deref()).await,
            Command::Bench(BenchCommand::Review {
                dir,
                presses,
                postgres,
            }) => bench::review(&dir, presses, postgres.as_deref()).await,
            Command::Bench(BenchCommand::Teacher {
                pairs,
                model,
                fixture,
                configs,
            }) => bench::teacher(pairs, model, &fixture, &configs).await,
        }
    })
}
