//! Manual pages: what `clap_mangen` renders from a program's flags (NAME, SYNOPSIS, DESCRIPTION, OPTIONS,
//! SUBCOMMANDS), plus the sections it cannot know (EXIT STATUS, SIGNALS, ENVIRONMENT, FILES, SEE ALSO), written by
//! each binary and inserted before the closing VERSION section.

use clap_mangen::roff::{Roff, bold, roman};

/// One `.SH` section.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: &'static str,
    pub items: Vec<Item>,
}

/// What a section holds, in order.
#[derive(Debug, Clone)]
pub enum Item {
    /// A paragraph of running text.
    Para(String),
    /// A subsection heading (`.SS`).
    Sub(String),
    /// A tagged paragraph: one or more terms (each a bold name and a roman rest, such as `=value`), then the text
    /// that explains them.
    Entry { terms: Vec<(String, String)>, text: String },
}

impl Item {
    /// An entry with one bold term and no rest.
    pub fn entry(term: impl Into<String>, text: impl Into<String>) -> Item {
        Item::Entry {
            terms: vec![(term.into(), String::new())],
            text: text.into(),
        }
    }
}

impl Section {
    pub fn new(title: &'static str, items: Vec<Item>) -> Section {
        Section { title, items }
    }
}

/// The page `man` renders, with `sections` inserted before its VERSION section (at the end when it has none).
pub fn render(man: &clap_mangen::Man, sections: &[Section]) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render(&mut page)?;
    let mut roff = Roff::new();
    for section in sections {
        roff.control("SH", [section.title]);
        for item in &section.items {
            match item {
                Item::Para(text) => {
                    roff.control("PP", []).text([roman(text.as_str())]);
                }
                Item::Sub(title) => {
                    roff.control("SS", [title.as_str()]);
                }
                Item::Entry { terms, text } => {
                    for (i, (name, rest)) in terms.iter().enumerate() {
                        roff.control(if i == 0 { "TP" } else { "TQ" }, []);
                        roff.text([bold(name.as_str()), roman(rest.as_str())]);
                    }
                    if !text.is_empty() {
                        roff.text([roman(text.as_str())]);
                    }
                }
            }
        }
    }
    // `render` starts with the preamble that defines the apostrophe string; the page already has it.
    let preamble = Roff::new().render();
    let rendered = roff.render();
    let extra = rendered.strip_prefix(preamble.as_str()).unwrap_or(&rendered);
    let marker = b"\n.SH VERSION\n";
    let at = page
        .windows(marker.len())
        .position(|w| w == marker)
        .map_or(page.len(), |i| i + 1);
    page.splice(at..at, extra.bytes());
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_go_before_version_and_are_escaped() {
        let cmd = clap::Command::new("demo").version("1.2.3").about("a demo");
        let man = clap_mangen::Man::new(cmd);
        let page = render(
            &man,
            &[Section::new(
                "EXIT STATUS",
                vec![
                    Item::Para(".leading dot and a-hyphen, don't".into()),
                    Item::Entry {
                        terms: vec![("A".into(), "=1".into()), ("B".into(), String::new())],
                        text: "both".into(),
                    },
                ],
            )],
        )
        .unwrap();
        let page = String::from_utf8(page).unwrap();
        assert_eq!(page.matches(".ie \\n(.g .ds Aq").count(), 1, "{page}");
        let status = page.find(".SH \"EXIT STATUS\"").expect(&page);
        assert!(status < page.find(".SH VERSION").unwrap(), "{page}");
        assert!(
            page.contains("\n\\&.leading dot and a\\-hyphen, don\\*(Aqt\n"),
            "{page}"
        );
        assert!(page.contains(".TP\n\\fBA\\fR=1\n.TQ\n\\fBB\\fR\nboth\n"), "{page}");
    }
}
