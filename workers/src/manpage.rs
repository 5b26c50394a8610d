//! doradura-worker(8): clap's flags, plus EXIT STATUS, SIGNALS, ENVIRONMENT, FILES and SEE ALSO.

use doradura_proto::manpage::{Item, Section};

fn para(text: &str) -> Item {
    Item::Para(text.to_string())
}

fn sections() -> Vec<Section> {
    vec![
        Section::new(
            "EXIT STATUS",
            vec![
                Item::entry(
                    "0",
                    "The supervisor stopped it, closed the link or stopped answering its heartbeats, or it got \
                     SIGTERM.",
                ),
                Item::entry(
                    "1",
                    "It failed: the supervisor was already gone when it started (its parent is not \
                     --supervisor-pid), the control socket could not be reached, or the link broke. doradurad \
                     restarts it with backoff and reports a crash loop.",
                ),
                Item::entry("2", "The command line is wrong; doradurad always gives all four flags."),
            ],
        ),
        Section::new(
            "SIGNALS",
            vec![
                Item::entry(
                    "SIGTERM",
                    "Exit at once with status 0. doradurad starts each worker with PR_SET_PDEATHSIG set to \
                     SIGTERM, so a worker ends when its supervisor dies; a task it was running is run again by \
                     the supervisor.",
                ),
                para(
                    "yt-dlp is started with PR_SET_PDEATHSIG set to SIGKILL, so it dies with its worker. Each \
                     worker leads a process group of its own, and doradurad stops a stuck worker by sending \
                     SIGKILL to that whole group (the worker, yt-dlp, ffmpeg).",
                ),
            ],
        ),
        Section::new(
            "ENVIRONMENT",
            vec![
                para(
                    "doradurad starts a worker with an empty environment but PATH, TMPDIR and RUST_LOG: the bot \
                     token and systemd's sockets never reach programs that handle untrusted input.",
                ),
                Item::entry(
                    "RUST_LOG",
                    "The log filter (default info), the daemon's own. Logs go to standard error, which the \
                     worker shares with doradurad (the journal under systemd).",
                ),
                Item::entry(
                    "PATH",
                    "Finds yt-dlp when --ytdlp-path has no directory, and ffmpeg and a JavaScript runtime for \
                     yt-dlp.",
                ),
                para(
                    "yt-dlp gets its own minimal environment: PATH, a private HOME, TMPDIR and XDG directories \
                     in the task's directory, a UTF-8 locale, and, unless private hosts are allowed and no \
                     DOWNLOAD_PROXY is set, the proxy variables (http_proxy, https_proxy, all_proxy and their \
                     upper-case forms) naming the worker's address-checking proxy.",
                ),
            ],
        ),
        Section::new(
            "FILES",
            vec![Item::entry(
                "/run/doradura/control.sock",
                "The supervisor's control socket under systemd (--socket).",
            )],
        ),
        Section::new("SEE ALSO", vec![para("doradurad(8), doradurctl(1), yt-dlp(1)")]),
    ]
}

/// doradura-worker(8) in roff.
pub fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    doradura_proto::manpage::render(&clap_mangen::Man::new(cmd).section("8"), &sections())
}
