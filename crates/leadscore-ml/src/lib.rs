//! Predictive lead scoring: learn the chance that a lead converts from a
//! deployment's own history, and say honestly how well that works.
//!
//! - [`data`]: a table of columns (numbers or categories, blanks kept as
//!   information) and the outcome to learn, with identifiers left out.
//! - [`binning`]: every column as small integer bins, fitted on training rows only.
//! - [`gbdt`]: gradient-boosted trees on those bins (log-loss, leaf-wise
//!   growth, categories split natively), the main model.
//! - [`logistic`]: logistic regression, the simple baseline.
//! - [`metrics`] and [`cv`]: ROC AUC, log-loss, Brier score, conversion in the
//!   top slices; stratified k-fold cross-validation.
//!
//! No IO: callers read files and pass the table.

pub mod binning;
pub mod cv;
pub mod data;
pub mod gbdt;
pub mod logistic;
pub mod metrics;
pub mod rng;

pub use data::{Column, Dataset, Table};
