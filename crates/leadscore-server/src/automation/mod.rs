//! Automation (seed 002, step 6): triggers and their actions, routing to
//! reps, notifications, nurture, webhooks, and scores that age on their own.
//! See `engine` for how a lead is evaluated and `webhooks` for delivery.

pub mod config;
pub mod engine;
pub mod routing;
pub mod tasks;
pub mod webhooks;

pub use config::AutomationSettings;
pub use engine::{Engine, Handle, start};
