//! Plain types and pure functions of the relevance domain. No IO, no async.

pub mod calibration;
mod judgment;
mod label;
pub mod lexical;
pub mod metrics;
mod pair;
pub mod prompt;
mod rationale;
pub mod review;
pub mod schedule;
mod score;
pub mod split;
pub mod text;

pub use calibration::{Calibration, CalibrationFit, Objective as CalibrationObjective};
pub use judgment::{DistSource, Judgment};
pub use label::{Label, LabelScale, ScaleError, balanced_class_weights};
pub use pair::{Attributes, Item, Pair, PairKey, Query};
pub use prompt::{Mode, Prompt};
pub use rationale::{Dimension, Rationale, Verdict};
pub use score::ScoreDist;
pub use split::{DEFAULT_SEED, SplitQuery, SplitSpec, Splits};
