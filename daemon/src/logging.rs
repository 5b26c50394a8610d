//! Logs through tracing: to journald when running under it (`JOURNAL_STREAM` set and the journal socket there),
//! to stderr otherwise. The filter can be swapped at run time (SIGHUP).

use std::io::IsTerminal;

use tracing::{error, info};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Swaps the log filter of the installed subscriber.
pub struct Reload(reload::Handle<EnvFilter, Registry>);

impl Reload {
    pub fn apply(&self, filter: &str) {
        match EnvFilter::try_new(filter) {
            Ok(f) => match self.0.reload(f) {
                Ok(()) => info!(filter, "log filter reloaded"),
                Err(e) => error!(error = %e, "could not reload the log filter"),
            },
            Err(e) => error!(filter, error = %e, "invalid log filter; keeping the old one"),
        }
    }
}

/// Installs the global subscriber. `filter` was validated with the configuration.
pub fn init(filter: &str, under_journald: bool) -> Reload {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let journald = under_journald.then(tracing_journald::layer).and_then(Result::ok);
    let registry = tracing_subscriber::registry().with(filter);
    match journald {
        Some(layer) => registry.with(layer).init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .init(),
    }
    Reload(handle)
}
