# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_doradurctl_global_optspecs
    string join \n socket= json h/help V/version
end

function __fish_doradurctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_doradurctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_doradurctl_using_subcommand
    set -l cmd (__fish_doradurctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c doradurctl -n "__fish_doradurctl_needs_command" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_needs_command" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -s V -l version -d 'Print version'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "status" -d 'Version, uptime, workers (with their current task) and database of the running daemon'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "download" -d 'Download a URL through the daemon\'s queue and workers, and write the file to --out'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "queue" -d 'Waiting and running tasks, with their position and progress'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "cancel" -d 'Cancel a task, waiting or running'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "metrics" -d 'The daemon\'s metrics grouped by category: performance, business, engagement or system (all without one)'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "completions" -d 'Shell completions for bash, zsh, fish, elvish or powershell, on stdout'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "man" -d 'This program\'s manual page (roff), on stdout'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "alerts" -d 'Alerts firing now and silences; with --history, the last 20 alerts'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "ytdlp" -d 'The private yt-dlp kept current by doradura-ytdlp-update.timer: its releases, and a rollback (works on the files in /var/lib/doradura/yt-dlp, without the daemon)'
complete -c doradurctl -n "__fish_doradurctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand status" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand status" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand download" -l format -d 'mp3, mp4 or srt' -r
complete -c doradurctl -n "__fish_doradurctl_using_subcommand download" -l quality -d 'mp3: 128k/192k/256k/320k; mp4: 360p/480p/720p/1080p/best; srt: none [default: the format\'s best fit]' -r
complete -c doradurctl -n "__fish_doradurctl_using_subcommand download" -l priority -d 'Queue priority: high, medium or low [default: high]' -r
complete -c doradurctl -n "__fish_doradurctl_using_subcommand download" -l out -d 'Directory for the file' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand download" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand download" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand download" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand queue" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand queue" -l all -d 'Also the latest finished tasks'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand queue" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand queue" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand cancel" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand cancel" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand metrics" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand metrics" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand metrics" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand completions" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand completions" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand man" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand man" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand man" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and not __fish_seen_subcommand_from silence test help" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and not __fish_seen_subcommand_from silence test help" -l history -d 'Also the last 20 alerts, resolved or not'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and not __fish_seen_subcommand_from silence test help" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and not __fish_seen_subcommand_from silence test help" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and not __fish_seen_subcommand_from silence test help" -f -a "silence" -d 'Stop sending messages of one alert type for a while (90s, 30m, 4h, 2d); firings are still recorded'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and not __fish_seen_subcommand_from silence test help" -f -a "test" -d 'Send a test alert of one type to the admins, marked as a test'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and not __fish_seen_subcommand_from silence test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from silence" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from silence" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from test" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from test" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "silence" -d 'Stop sending messages of one alert type for a while (90s, 30m, 4h, 2d); firings are still recorded'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "test" -d 'Send a test alert of one type to the admins, marked as a test'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand alerts; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and not __fish_seen_subcommand_from status rollback help" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and not __fish_seen_subcommand_from status rollback help" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and not __fish_seen_subcommand_from status rollback help" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and not __fish_seen_subcommand_from status rollback help" -f -a "status" -d 'The current and previous releases: versions, release dates and ages, and the versions rolled back'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and not __fish_seen_subcommand_from status rollback help" -f -a "rollback" -d 'Make the previous release current again (atomically; the one left becomes previous, and the updater does not install its version again). The next download uses it; no restart is needed'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and not __fish_seen_subcommand_from status rollback help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from status" -l dir -d 'The updater\'s base directory' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from status" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from status" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from rollback" -l dir -d 'The updater\'s base directory' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from rollback" -l socket -d 'The daemon\'s control socket [default: $CONTROL_SOCKET, else /run/doradura/control.sock when it exists, else ./data/control.sock]' -r -F
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from rollback" -l json -d 'Print JSON instead of tables, for scripts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from rollback" -s h -l help -d 'Print help'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from help" -f -a "status" -d 'The current and previous releases: versions, release dates and ages, and the versions rolled back'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from help" -f -a "rollback" -d 'Make the previous release current again (atomically; the one left becomes previous, and the updater does not install its version again). The next download uses it; no restart is needed'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand ytdlp; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "status" -d 'Version, uptime, workers (with their current task) and database of the running daemon'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "download" -d 'Download a URL through the daemon\'s queue and workers, and write the file to --out'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "queue" -d 'Waiting and running tasks, with their position and progress'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "cancel" -d 'Cancel a task, waiting or running'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "metrics" -d 'The daemon\'s metrics grouped by category: performance, business, engagement or system (all without one)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "completions" -d 'Shell completions for bash, zsh, fish, elvish or powershell, on stdout'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "man" -d 'This program\'s manual page (roff), on stdout'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "alerts" -d 'Alerts firing now and silences; with --history, the last 20 alerts'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "ytdlp" -d 'The private yt-dlp kept current by doradura-ytdlp-update.timer: its releases, and a rollback (works on the files in /var/lib/doradura/yt-dlp, without the daemon)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and not __fish_seen_subcommand_from status download queue cancel metrics completions man alerts ytdlp help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "silence" -d 'Stop sending messages of one alert type for a while (90s, 30m, 4h, 2d); firings are still recorded'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and __fish_seen_subcommand_from alerts" -f -a "test" -d 'Send a test alert of one type to the admins, marked as a test'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and __fish_seen_subcommand_from ytdlp" -f -a "status" -d 'The current and previous releases: versions, release dates and ages, and the versions rolled back'
complete -c doradurctl -n "__fish_doradurctl_using_subcommand help; and __fish_seen_subcommand_from ytdlp" -f -a "rollback" -d 'Make the previous release current again (atomically; the one left becomes previous, and the updater does not install its version again). The next download uses it; no restart is needed'
