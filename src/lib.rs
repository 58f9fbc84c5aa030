//! `workbench`: a terminal workbench for e-commerce search relevance.
//!
//! Layers, arrows pointing down only: `cli` → `commands` → (`teacher`, `ingest`) → `store` → `domain`.

pub mod audit;
pub mod augment;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod export;
pub mod ingest;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod report;
pub mod store;
pub mod student;
pub mod teacher;
pub mod tui;
pub mod ui;
