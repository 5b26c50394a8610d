//! The URL checker against a corpus of tricky links kept in `tests/corpus/urls.txt`: other schemes, credentials,
//! private and metadata addresses in every spelling (decimal, hex, octal, percent-encoded, full-width and circled
//! digits, IPv4-mapped and NAT64 IPv6), and malformed input.

use doradurad::urlcheck;

#[test]
fn every_link_in_the_corpus_gets_its_expected_answer() {
    let corpus = include_str!("corpus/urls.txt");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut checked = 0;
    for line in corpus.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (expect, url) = line.split_once('\t').expect("ok|refused<TAB>url");
        let got = rt.block_on(urlcheck::check(url, false, &[]));
        match expect {
            "ok" => assert!(got.is_ok(), "{url:?} was refused: {got:?}"),
            "refused" => {
                let err = got.expect_err(url);
                // The refusal is a sentence for the user, not a debug dump.
                assert!(!err.to_string().contains("Err("), "{err}");
            }
            other => panic!("bad corpus line {line:?}: {other}"),
        }
        checked += 1;
    }
    assert!(checked >= 45, "{checked}");
    let long = format!("https://93.184.216.34/{}", "a".repeat(3000));
    assert_eq!(
        rt.block_on(urlcheck::check(&long, false, &[])),
        Err(urlcheck::UrlError::TooLong { len: long.len() })
    );
}
