//! doradurctl(1): clap's flags and subcommands, plus EXIT STATUS, SIGNALS, ENVIRONMENT, FILES and SEE ALSO.

use doradura_proto::manpage::{Item, Section};

fn para(text: &str) -> Item {
    Item::Para(text.to_string())
}

fn sections() -> Vec<Section> {
    vec![
        Section::new(
            "EXIT STATUS",
            vec![
                Item::entry("0", "The command did what it was asked."),
                Item::entry(
                    "1",
                    "It did not: the daemon could not be reached (no socket, or no permission on it), the daemon \
                     refused the call (changing calls need root, the daemon's user or its group), the task \
                     failed or does not exist, a ytdlp action could not be done, or the answer could not be \
                     written. The reason is on standard error.",
                ),
                Item::entry(
                    "2",
                    "The command line is wrong (an unknown subcommand or flag, a missing value).",
                ),
            ],
        ),
        Section::new(
            "SIGNALS",
            vec![para(
                "doradurctl installs no handlers: SIGINT (Ctrl-C) and SIGTERM end it at once. A download it \
                 asked for goes on in the daemon (doradurctl cancel TASK stops it); the file is written to --out \
                 as a hidden .NAME.part file and renamed only when complete, so an interrupted download leaves \
                 no file under its final name.",
            )],
        ),
        Section::new(
            "ENVIRONMENT",
            vec![Item::entry(
                "CONTROL_SOCKET",
                "The daemon's control socket when --socket is not given, as doradurad(8) uses it.",
            )],
        ),
        Section::new(
            "FILES",
            vec![
                Item::entry(
                    "/run/doradura/control.sock",
                    "The packaged service's control socket, used when --socket and CONTROL_SOCKET are not given \
                     and it exists; ./data/control.sock otherwise (a daemon run by hand in that directory).",
                ),
                Item::entry(
                    "/var/lib/doradura/yt-dlp/",
                    "The releases of the private yt-dlp that doradurctl ytdlp status shows and rollback switches \
                     (--dir names another base directory).",
                ),
                Item::entry(
                    "/usr/share/bash-completion/completions/doradurctl, \
                     /usr/share/zsh/vendor-completions/_doradurctl, \
                     /usr/share/fish/vendor_completions.d/doradurctl.fish",
                    "Shell completions, as doradurctl completions SHELL prints them.",
                ),
            ],
        ),
        Section::new(
            "SEE ALSO",
            vec![para(
                "doradurad(8), doradura-worker(8), /usr/share/doc/doradura/operations.md",
            )],
        ),
    ]
}

/// doradurctl(1) in roff.
pub fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    doradura_proto::manpage::render(&clap_mangen::Man::new(cmd), &sections())
}
