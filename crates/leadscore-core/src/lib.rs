//! leadscore's domain: leads, events, scoring models and the scoring engine.
//!
//! This crate does no IO: no files, no network, no clock. Callers pass the
//! moment to score as of, and the data to score; everything here is a pure
//! function of its inputs, so it is cheap to test exhaustively and safe to
//! call from any thread.

pub mod aging;
pub mod behavior;
pub mod calendar;
pub mod checks;
pub mod event;
pub mod fit;
pub mod lead;
pub mod model;
pub mod report;
pub mod scoring;
pub mod time;
pub mod workflow;

pub use behavior::{BehaviorRule, Hit, PropertyLookup};
pub use calendar::WorkingCalendar;
pub use event::Event;
pub use fit::FitRule;
pub use lead::{FieldRef, Lead, LeadData, StdField};
pub use model::{Band, Grade, ModelError, ScoringModel};
pub use scoring::{Contribution, FitOutcome, RuleKind, Score, round2};
pub use time::Timestamp;
