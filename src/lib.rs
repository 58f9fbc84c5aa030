//! `workbench`: a terminal workbench for e-commerce search relevance.
//!
//! Layers, arrows pointing down only: `cli` → `commands` → features (`ingest`, `teacher`,
//! `export`, `audit`, `student`, `augment`, `tui`, none naming another) → `store` → `domain`;
//! `tests/layers.rs` keeps it so.

pub mod allocator;
pub mod audit;
pub mod augment;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod export;
pub mod ingest;
pub mod models;
pub mod settings;
pub mod store;
pub mod student;
pub mod teacher;
pub mod terminal;
pub mod tui;
