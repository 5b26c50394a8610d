//! Checks that a finished file is what its format promises, before it is handed on: an mp3 is MPEG audio, an mp4
//! an ISO media container, an srt SubRip text.

use std::io::Read;
use std::path::Path;

use doradura_proto::types::Format;

pub fn check(path: &Path, format: Format) -> Result<(), String> {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(|e| format!("cannot read the result: {e}"))?;
    let ok = match format {
        Format::Mp3 => is_mp3(&head),
        Format::Mp4 => head.len() >= 12 && &head[4..8] == b"ftyp",
        Format::Srt => is_srt(&head),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("the result is not a valid {} file", format.extension()))
    }
}

/// An ID3v2 tag, or an MPEG audio frame header (11 sync bits, a valid layer and bitrate).
fn is_mp3(b: &[u8]) -> bool {
    if b.starts_with(b"ID3") {
        return true;
    }
    b.len() >= 4 && b[0] == 0xFF && (b[1] & 0xE0) == 0xE0 && (b[1] & 0x06) != 0 && (b[2] & 0xF0) != 0xF0
}

/// UTF-8 text whose first cue is `1` followed by a `-->` timing line.
fn is_srt(b: &[u8]) -> bool {
    let text = String::from_utf8_lossy(b);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let mut lines = text.lines();
    lines.next().is_some_and(|l| l.trim().parse::<u32>().is_ok()) && lines.next().is_some_and(|l| l.contains("-->"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert!(is_mp3(b"ID3\x04\x00rest"));
        assert!(is_mp3(&[0xFF, 0xFB, 0x90, 0x64]));
        assert!(!is_mp3(&[0x00, 0x00, 0x00, 0x20, b'f', b't', b'y', b'p']));
        assert!(!is_mp3(b"<html>"));
        assert!(is_srt(b"1\n00:00:00,000 --> 00:00:01,000\nHello\n"));
        assert!(is_srt("\u{feff}1\r\n00:00:00,000 --> 00:00:01,000\r\nHi".as_bytes()));
        assert!(!is_srt(b"WEBVTT\n\n00:00.000 --> 00:01.000\nHi"));
    }

    #[test]
    fn a_file_of_the_wrong_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.mp4");
        std::fs::write(&p, b"<html>not a video</html>").unwrap();
        assert_eq!(
            check(&p, Format::Mp4).unwrap_err(),
            "the result is not a valid mp4 file"
        );
        std::fs::write(&p, b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00").unwrap();
        assert!(check(&p, Format::Mp4).is_ok());
    }
}
