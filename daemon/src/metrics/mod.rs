//! Metrics: the catalog of families, what restores them at start-up, and the HTTP server that serves them.

pub mod catalog;
pub mod http;
mod recent;
mod restore;

pub use catalog::Metrics;
pub use restore::{refresh_depth, refresh_users, restore};
