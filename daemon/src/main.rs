use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use doradurad::cli::Cli;
use doradurad::{Config, logging};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// `EX_CONFIG` from sysexits.h: systemd's `RestartPreventExitStatus=78` keeps a bad config from restart loops.
const EXIT_CONFIG: u8 = 78;

/// The process environment, with `./.env` (development) underneath it.
fn environment() -> HashMap<String, String> {
    let mut env: HashMap<String, String> = dotenvy::from_path_iter(".env")
        .map(|iter| iter.filter_map(Result::ok).collect())
        .unwrap_or_default();
    env.extend(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))));
    env
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.man {
        use std::io::Write;
        return match doradurad::cli::man_page().and_then(|m| std::io::stdout().write_all(&m)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let flags = cli.flag_values();
    let env = environment();
    let config = match Config::resolve(&flags, &env, cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("doradurad: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check_config {
        for (name, value) in config.effective() {
            println!("{name}={value}");
        }
        return ExitCode::SUCCESS;
    }
    let reload = logging::init(&config.log_filter, env.contains_key("JOURNAL_STREAM"));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("doradurad: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let signals = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => (term, int, hup),
            _ => {
                error!("cannot install signal handlers");
                return ExitCode::FAILURE;
            }
        };
        let (reloads_tx, reloads) = tokio::sync::watch::channel(config.clone());
        tokio::spawn(handle_signals(signals, shutdown.clone(), move || {
            // SIGHUP: re-read the config file (and .env) and apply what can change at run time.
            match Config::resolve(&flags, &environment(), cli.config.as_deref()) {
                Ok(new) => {
                    reload.apply(&new.log_filter);
                    reloads_tx.send_replace(new);
                }
                Err(e) => error!("reload refused, keeping the running configuration: {e}"),
            }
        }));
        match doradurad::run(config, shutdown, reloads).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e}");
                eprintln!("doradurad: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn handle_signals(
    (mut term, mut int, mut hup): (
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    ),
    shutdown: CancellationToken,
    on_reload: impl Fn(),
) {
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM received"); shutdown.cancel(); }
            _ = int.recv() => { info!("SIGINT received"); shutdown.cancel(); }
            _ = hup.recv() => { info!("SIGHUP received: reloading"); on_reload(); }
        }
    }
}
