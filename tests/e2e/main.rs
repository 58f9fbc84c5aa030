//! The end-to-end tests, one module per area, in one test binary: each binary links the whole
//! crate with mistral.rs and candle, so one link instead of one per area keeps a cold build short.
//! cargo-nextest still runs every test in a process of its own (`.config/nextest.toml`).

mod common;

mod audit;
mod augment;
mod calibration;
mod concurrency;
mod crash;
mod export;
mod foundation;
mod hostile;
mod layers;
mod postgres;
mod properties;
mod reliability;
mod review;
mod settings;
mod splits;
mod student;
mod teacher;
