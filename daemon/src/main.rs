use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use doradurad::cli::{self, Cli, Vars};
use doradurad::{Config, logging};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// `EX_CONFIG` from sysexits.h: systemd's `RestartPreventExitStatus=78` keeps a bad config from restart loops.
const EXIT_CONFIG: u8 = 78;

/// The process environment, with the environment file (`--env-file`, or the packaged one for `--check-config`) over
/// it and `./.env` (development) under it; and what the file holds. `at_start`: see `cli::environment`.
fn environment(env_file: Option<&Path>, check_config: bool, at_start: &Vars) -> Result<(Vars, Vars), String> {
    let process = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let unit = check_config && env_file == Some(Path::new(cli::PACKAGED_ENV_FILE));
    cli::environment(env_file, unit, process, at_start)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env_file: Option<PathBuf>;
    let file_at_start: Vars;
    if cli.man {
        use std::io::Write;
        return match doradurad::cli::man_page().and_then(|m| std::io::stdout().write_all(&m)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let flags = cli.flag_values();
    let env = match cli::env_file(&cli, Path::new(cli::PACKAGED_ENV_FILE))
        .and_then(|file| Ok((environment(file.as_deref(), cli.check_config, &Vars::new())?, file)))
    {
        Ok(((env, read), file)) => {
            if cli.check_config {
                match &file {
                    Some(f) => eprintln!(
                        "doradurad: environment file {} (it wins over the environment)",
                        f.display()
                    ),
                    None => eprintln!("doradurad: no environment file ({} is absent)", cli::PACKAGED_ENV_FILE),
                }
            }
            env_file = file;
            file_at_start = read;
            env
        }
        Err(e) => {
            eprintln!("doradurad: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
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
            // SIGHUP: re-read the environment file, .env and the config file, and apply what can change at run
            // time. The process environment is still the one of the start: the re-read file wins over it.
            let resolved = environment(env_file.as_deref(), false, &file_at_start)
                .and_then(|(env, _)| Config::resolve(&flags, &env, cli.config.as_deref()).map_err(|e| e.to_string()));
            match resolved {
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
                if e.is_config() {
                    ExitCode::from(EXIT_CONFIG)
                } else {
                    ExitCode::FAILURE
                }
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
