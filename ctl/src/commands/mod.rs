//! One module per subcommand.

pub mod alerts;
pub mod cancel;
pub mod download;
pub mod metrics;
pub mod queue;
pub mod status;
pub mod ytdlp;

/// A gRPC error as a sentence: the daemon's own message for the errors it explains.
pub fn rpc(status: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    match status.code() {
        Code::InvalidArgument
        | Code::ResourceExhausted
        | Code::Unavailable
        | Code::FailedPrecondition
        | Code::PermissionDenied => {
            anyhow::anyhow!("{}", doradura_proto::text::clean(status.message()))
        }
        code => anyhow::anyhow!(
            "the daemon answered {code:?}: {}",
            doradura_proto::text::clean(status.message())
        ),
    }
}

/// Bytes in binary units: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Seconds as `1d 2h 3m 4s`, leaving out leading zero units.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts = [(d, "d"), (h, "h"), (m, "m"), (s, "s")];
    let first = parts.iter().position(|(v, _)| *v > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .map(|(v, u)| format!("{v}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{human_bytes, human_duration};

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(61), "1m 1s");
        assert_eq!(human_duration(3600), "1h 0m 0s");
        assert_eq!(human_duration(90_061), "1d 1h 1m 1s");
    }
}
