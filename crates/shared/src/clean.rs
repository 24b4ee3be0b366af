//! E-mail cleaning: from a raw MIME message or a subject/body pair to the
//! short text the classifier embeds.
//!
//! What is kept: the subject (reply/forward prefixes removed) and the first
//! paragraphs of the author's own words, up to a budget of words that the
//! tokenizer's token cap then trims exactly. What is dropped: every header
//! but the subject (sender headers leak labels and must never be classified
//! on), HTML markup, quoted replies, forwarded blocks, signatures, sign-offs,
//! legal disclaimers, greetings and tracking noise (long links, "view in
//! browser", "unsubscribe", invisible preheader padding).

use std::sync::LazyLock;

use mail_parser::{MessageParser, PartType};
use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::types::EmailInput;

/// Smallest token cap the classifier accepts.
pub const MIN_TOKEN_CAP: usize = 64;
/// Largest token cap (BERT position embeddings stop at 512).
pub const MAX_TOKEN_CAP: usize = 512;
/// Default token cap: covers the subject and first paragraph of almost all mail.
pub const DEFAULT_TOKEN_CAP: usize = 256;

/// Only this much of a body is looked at: the kept text is a few hundred
/// words from its start, so a 10 MB body costs no more than a short one.
const BODY_SCAN_BYTES: usize = 64 * 1024;

/// How cleaning behaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CleanConfig {
    /// Tokens the encoder sees at most (64–512).
    pub token_cap: usize,
    /// Raw messages larger than this are refused rather than parsed.
    pub max_message_bytes: usize,
}

impl Default for CleanConfig {
    fn default() -> Self {
        Self {
            token_cap: DEFAULT_TOKEN_CAP,
            max_message_bytes: 32 * 1024 * 1024,
        }
    }
}

impl CleanConfig {
    /// A configuration with the given token cap, checked against 64–512.
    pub fn with_token_cap(token_cap: usize) -> Result<Self, CleanError> {
        if !(MIN_TOKEN_CAP..=MAX_TOKEN_CAP).contains(&token_cap) {
            return Err(CleanError::TokenCap(token_cap));
        }
        Ok(Self {
            token_cap,
            ..Self::default()
        })
    }
}

/// Why an e-mail could not be cleaned.
#[derive(Debug, Error, PartialEq)]
pub enum CleanError {
    #[error("token cap {0} is outside {MIN_TOKEN_CAP}..={MAX_TOKEN_CAP}")]
    TokenCap(usize),
    #[error("message is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("not an RFC 5322 message: {0}")]
    Malformed(String),
}

/// The text to classify, and what it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleaned {
    /// Subject (without Re:/Fwd:) and the kept paragraphs.
    pub text: String,
    /// The cleaned subject alone.
    pub subject: String,
    /// True when neither subject nor body left any words.
    pub empty: bool,
}

/// Cleans any input form.
pub fn clean(input: &EmailInput, config: &CleanConfig) -> Result<Cleaned, CleanError> {
    match input {
        EmailInput::Raw { raw } => clean_raw(raw.as_bytes(), config),
        EmailInput::Pair { subject, body } => Ok(clean_pair(subject, body, config)),
    }
}

/// Cleans a raw RFC 5322 / MIME message. Only the subject and the first
/// textual body part are read; attachments and all other headers are ignored.
pub fn clean_raw(raw: &[u8], config: &CleanConfig) -> Result<Cleaned, CleanError> {
    if raw.len() > config.max_message_bytes {
        return Err(CleanError::TooLarge {
            size: raw.len(),
            limit: config.max_message_bytes,
        });
    }
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(CleanError::Malformed("the message is empty".into()));
    }
    if !starts_with_header_field(raw) {
        return Err(CleanError::Malformed(
            "it does not start with a header field (expected lines such as `Subject: …` before the body)".into(),
        ));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| CleanError::Malformed("no header or body could be parsed".into()))?;
    let subject = message.subject().unwrap_or_default().to_string();
    let body = message
        .text_body
        .first()
        .and_then(|&i| message.parts.get(i as usize))
        .map(|part| match &part.body {
            PartType::Text(text) => text.to_string(),
            PartType::Html(html) => html_to_text(html),
            _ => String::new(),
        })
        .unwrap_or_default();
    Ok(clean_pair(&subject, &body, config))
}

/// Cleans a subject and a body. A body that looks like HTML is converted to
/// text first.
pub fn clean_pair(subject: &str, body: &str, config: &CleanConfig) -> Cleaned {
    let body = truncate_bytes(body, BODY_SCAN_BYTES);
    let body = if looks_like_html(body) {
        html_to_text(body)
    } else {
        body.to_string()
    };
    let subject = clean_subject(subject);
    let paragraphs = body_paragraphs(&body);

    // Sub-word tokens are never fewer than words, so a budget of `token_cap`
    // words keeps everything the tokenizer's exact cap could use.
    let mut budget = config.token_cap;
    let mut kept: Vec<String> = Vec::new();
    let subject_words: Vec<&str> = subject.split_whitespace().take(budget).collect();
    budget -= subject_words.len();
    for paragraph in paragraphs {
        if budget == 0 {
            break;
        }
        let words: Vec<&str> = paragraph.split_whitespace().take(budget).collect();
        budget -= words.len();
        kept.push(words.join(" "));
    }
    let subject = subject_words.join(" ");
    let body = kept.join("\n");
    let text = match (subject.is_empty(), body.is_empty()) {
        (true, _) => body,
        (false, true) => subject.clone(),
        (false, false) => format!("{subject}\n{body}"),
    };
    Cleaned {
        empty: text.is_empty(),
        text,
        subject,
    }
}

/// RFC 5322: a message starts with `field-name:` (printable ASCII but ':').
fn starts_with_header_field(raw: &[u8]) -> bool {
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let line = &raw[start..];
    let name_len = line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name_len > 0 && line.get(name_len) == Some(&b':')
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn looks_like_html(body: &str) -> bool {
    static TAG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)<\s*(html|body|div|p|br|table|span|a\s)[^>]*>").expect("static regex")
    });
    TAG.is_match(body)
}

/// HTML to plain text with html2text, links reduced to their text.
pub fn html_to_text(html: &str) -> String {
    let html = truncate_bytes(html, BODY_SCAN_BYTES * 4);
    let html = limit_nesting(html, MAX_HTML_DEPTH);
    // Raw mode reads a table as one column, cell after cell. Laid out, each
    // cell's lines are padded to the table's width (up to the 100,000
    // columns given here), so layout tables cost time with the square of
    // their text; classification needs the words, not the grid.
    html2text::config::plain_no_decorate()
        .raw_mode(true)
        .link_footnotes(false)
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_else(|_| strip_tags(&html))
}

/// Deepest element nesting handed to html2text. Real mail layouts nest a
/// few dozen levels; html2text's parse and layout cost grows with the
/// square of the depth (32,700 nested lists took 90 s on one core).
pub const MAX_HTML_DEPTH: usize = 64;

/// `html` with every tag below `max_depth` open elements replaced by a
/// space, in one linear pass; the text between tags is kept. Tags that a
/// sibling closes implicitly (`<p>`, `<li>`, table cells...) and void
/// elements do not count as a level, so flat markup is left as it is.
pub fn limit_nesting(html: &str, max_depth: usize) -> std::borrow::Cow<'_, str> {
    static TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*>").expect("static regex"));
    const FLAT: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "param", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
        "thead", "tbody", "tfoot", "colgroup", "rb", "rt", "rp",
    ];
    let mut depth = 0usize;
    let mut out: Option<String> = None;
    let mut copied = 0;
    for m in TAG.captures_iter(html) {
        let whole = m.get(0).expect("group 0 is the match");
        let name = &m[2];
        if FLAT.iter().any(|f| f.eq_ignore_ascii_case(name)) || whole.as_str().ends_with("/>") {
            continue;
        }
        let keep = if m[1].is_empty() {
            depth += 1;
            depth <= max_depth
        } else {
            depth = depth.saturating_sub(1);
            depth < max_depth
        };
        if !keep {
            let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
            o.push_str(&html[copied..whole.start()]);
            o.push(' ');
            copied = whole.end();
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(html),
        Some(mut o) => {
            o.push_str(&html[copied..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

/// Last resort when html2text refuses the input: drop anything tag-shaped.
fn strip_tags(html: &str) -> String {
    static TAGS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>").expect("static regex"));
    TAGS.replace_all(html, " ").into_owned()
}

fn clean_subject(subject: &str) -> String {
    static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^\s*((re|fw|fwd|aw|sv|wg|tr|antw)(\[\d+\])?\s*:\s*)+")
            .expect("static regex")
    });
    let s = PREFIX.replace(subject, "");
    normalise_line(&s)
}

/// A line of quoted text in a reply (`>`), including nested quotes.
fn is_quoted(line: &str) -> bool {
    line.starts_with('>')
}

/// Lines after which everything is someone else's message.
fn starts_forwarded_or_original(line: &str) -> bool {
    static CUT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?ix)^(
                -{2,}\s*(original\s+message|forwarded\s+message|weitergeleitete\s+nachricht|message\s+d'origine)\s*-{2,}
              | begin\s+forwarded\s+message:?
              | _{10,}
            )\s*$",
        )
        .expect("static regex")
    });
    CUT.is_match(line)
}

/// An attribution line that introduces a quote ("On … wrote:", "… writes:").
fn is_attribution(line: &str) -> bool {
    static ATTR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(\bwrote|\bwrites|\bschrieb|\ba écrit)\s*:\s*$|^in article\s+<")
            .expect("static regex")
    });
    ATTR.is_match(line)
}

/// An Outlook-style header block of a quoted message: "From: …" followed
/// by "Sent:"/"Date:"/"To:"/"Subject:" lines.
fn starts_outlook_quote(line: &str, next: Option<&str>) -> bool {
    let lower = line.to_ascii_lowercase();
    if !(lower.starts_with("from:") || lower.starts_with("*from:*")) {
        return false;
    }
    next.map(|n| {
        let n = n.trim().to_ascii_lowercase();
        ["sent:", "date:", "to:", "subject:", "*sent:*", "cc:"]
            .iter()
            .any(|p| n.starts_with(p))
    })
    .unwrap_or(false)
}

fn is_signature_delimiter(line_untrimmed: &str) -> bool {
    let t = line_untrimmed.trim_end_matches(['\r', '\n']);
    t == "-- " || t == "--" || t == "---" || t == "—"
}

/// A line that only closes the message ("Thanks,", "Best regards", "Sent from my iPhone").
fn is_signoff(line: &str) -> bool {
    static SIGNOFF: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?ix)^(
                (many\s+|thanks\s+and\s+|with\s+)?(kind|best|warm|warmest|kindest)?\s*(regards|wishes)
              | (many\s+)?thanks(\s+(again|in\s+advance|a\s+lot|so\s+much))?
              | thank\s+you(\s+(again|in\s+advance|so\s+much))?
              | cheers | sincerely(\s+yours)? | yours(\s+(truly|sincerely|faithfully))? | best | all\s+the\s+best
              | respectfully | mit\s+freundlichen\s+grüßen | cordialement | saludos
              | sent\s+from\s+my\s+\w+.* | get\s+outlook\s+for\s+\w+.*
            )\s*[,.!]?\s*$",
        )
        .expect("static regex")
    });
    SIGNOFF.is_match(line)
}

/// The start of a legal or confidentiality notice: everything after it goes.
fn is_disclaimer(line: &str) -> bool {
    static DISCLAIMER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?ix)^(\W*(confidentiality|legal)\s+notice|\W*disclaimer\b|\W*caution:\s+this\s+e-?mail\s+originated
              |this\s+(e-?mail|message|communication)(\s+and\s+any\s+(attachments?|files)(\s+transmitted\s+with\s+it)?)?\s+(is|are|may\s+contain|contains?)\s+(strictly\s+)?(confidential|privileged|intended)
              |if\s+you\s+are\s+not\s+the\s+intended\s+recipient
              |the\s+information\s+(contained\s+)?in\s+this\s+(e-?mail|message)\s+is\s+(strictly\s+)?confidential)",
        )
        .expect("static regex")
    });
    DISCLAIMER.is_match(line)
}

/// Newsletter and tracking lines with no intent in them.
fn is_noise(line: &str) -> bool {
    static NOISE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?ix)^(
                .*\b(view|read|open)\s+(this|it)\s+(e-?mail\s+|message\s+)?(in|on)\s+(your|a|the)\s+(web\s+)?browser\b.*
              | .*\bunsubscribe\b.{0,80}
              | .*\b(manage|update)\s+(your\s+)?(email\s+)?(preferences|subscription)\b.{0,40}
              | \[(image|cid|logo|icon)[^\]]*\]
              | (https?://\S+\s*)+
            )$",
        )
        .expect("static regex")
    });
    NOISE.is_match(line)
}

fn is_greeting(paragraph: &str) -> bool {
    static GREETING: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(hi|hello|hey|dear|greetings|good\s+(morning|afternoon|evening)|hallo|bonjour)\b[^.!?]{0,40}[,!:]?$")
            .expect("static regex")
    });
    GREETING.is_match(paragraph)
}

/// Links reduced to their host: the path and query of a tracking link carry
/// no meaning but many tokens.
fn shorten_links(line: &str) -> String {
    static URL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:https?://|www\.)([^/\s?#<>]+)[^\s<>]*").expect("static regex")
    });
    URL.replace_all(line, "$1").into_owned()
}

fn normalise_line(line: &str) -> String {
    line.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200b}'..='\u{200f}' | '\u{00ad}' | '\u{034f}' | '\u{feff}' | '\u{2060}'
            )
        })
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The author's own paragraphs, in order.
fn body_paragraphs(body: &str) -> Vec<String> {
    let lines: Vec<&str> = body.lines().collect();
    let mut paragraphs = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut seen_words = 0usize;
    let mut i = 0;
    while i < lines.len() {
        let raw_line = lines[i];
        let line = raw_line.trim();
        let next = lines.get(i + 1).map(|l| l.trim());
        i += 1;
        if is_signature_delimiter(raw_line)
            || starts_forwarded_or_original(line)
            || starts_outlook_quote(line, next)
        {
            break;
        }
        if is_disclaimer(line) {
            break;
        }
        if seen_words > 0 && is_signoff(line) {
            break;
        }
        if is_quoted(line) || is_attribution(line) {
            continue;
        }
        // "On Mon, 3 Jan 2022 at 10:00, Jane Doe <" / "jane@example.com> wrote:"
        if line.starts_with("On ") && next.is_some_and(is_attribution) {
            i += 1;
            continue;
        }
        if is_noise(line) {
            continue;
        }
        let line = normalise_line(&shorten_links(line));
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
            continue;
        }
        seen_words += line.split_whitespace().count();
        current.push(line);
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    while paragraphs.first().is_some_and(|p| is_greeting(p)) {
        paragraphs.remove(0);
    }
    paragraphs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CleanConfig {
        CleanConfig::default()
    }

    #[test]
    fn token_cap_is_checked() {
        assert!(CleanConfig::with_token_cap(63).is_err());
        assert!(CleanConfig::with_token_cap(513).is_err());
        assert_eq!(CleanConfig::with_token_cap(128).unwrap().token_cap, 128);
    }

    #[test]
    fn subject_prefixes_are_removed() {
        let c = clean_pair("Re: FW: RE[2]: Card not arrived", "", &cfg());
        assert_eq!(c.subject, "Card not arrived");
    }

    #[test]
    fn quoted_reply_attribution_and_signature_are_dropped() {
        let body = "Hi Anna,\n\nMy card still has not arrived after two weeks.\nCan you send a new one?\n\nThanks,\nBob\n\nOn Mon, 3 Jan 2022 at 10:00, Anna <anna@bank.example> wrote:\n> Your card is on its way.\n> Regards";
        let c = clean_pair("Re: card", body, &cfg());
        assert_eq!(
            c.text,
            "card\nMy card still has not arrived after two weeks. Can you send a new one?"
        );
    }

    #[test]
    fn usenet_interleaved_quotes_keep_own_text() {
        let body = "In article <1993Apr5.1234@cs.example.edu> joe@cs.example.edu (Joe) writes:\n>Does the new driver support 1024x768?\n\nYes, it does with 1 MB of video memory.\n\n-- \nJoe Bloggs   | my opinions only";
        let c = clean_pair("Re: video driver", body, &cfg());
        assert_eq!(
            c.text,
            "video driver\nYes, it does with 1 MB of video memory."
        );
    }

    #[test]
    fn outlook_original_message_and_disclaimer_are_cut() {
        let body = "Please update the billing address on invoice 4411.\n\nThis e-mail and any attachments are confidential and intended solely for the addressee.\n\n-----Original Message-----\nFrom: x";
        let c = clean_pair("", body, &cfg());
        assert_eq!(c.text, "Please update the billing address on invoice 4411.");
        let body = "Need the April invoice.\n\nFrom: Support <support@example.com>\nSent: Monday\nSubject: invoice\n\nold text";
        assert_eq!(clean_pair("", body, &cfg()).text, "Need the April invoice.");
    }

    #[test]
    fn tracking_noise_and_links_are_reduced() {
        let body = "View this email in your browser\nYour order https://click.shop.example/t/abc?utm_source=x&id=123 has shipped.\nUnsubscribe | Manage preferences\nhttps://track.example/pixel.gif";
        let c = clean_pair("Order shipped", body, &cfg());
        assert_eq!(
            c.text,
            "Order shipped\nYour order click.shop.example has shipped."
        );
    }

    #[test]
    fn html_body_becomes_text() {
        let body = "<html><body><p>Hello,</p><p>The <b>VPN</b> drops every hour.</p><div>Regards<br>IT</div></body></html>";
        let c = clean_pair("VPN", body, &cfg());
        assert_eq!(c.text, "VPN\nThe VPN drops every hour.");
    }

    /// Greatest element depth of `html`, counted as `limit_nesting` counts.
    fn depth_of(html: &str) -> usize {
        let (mut d, mut max) = (0usize, 0);
        for tag in html.split('<').skip(1) {
            if tag.starts_with("div") || tag.starts_with("ul") {
                d += 1;
                max = max.max(d);
            } else if tag.starts_with("/div") || tag.starts_with("/ul") {
                d = d.saturating_sub(1);
            }
        }
        max
    }

    #[test]
    fn a_layout_table_is_read_as_text_not_padded_to_its_width() {
        // A fuzzer's slow unit: a 20 Newsgroups post in one table cell. Laid
        // out, every line was padded to the table's width, and 64 KB took
        // 0.47 s; read raw, the output is about the size of the text.
        let line = "refund my order, it arrived broken";
        let text: String = (0..200).map(|i| format!("{line} {i}<br>\n")).collect();
        let html = format!("<table><tr><td>{text}</td><td>second cell</td></tr></table>");
        let out = html_to_text(&html);
        assert!(
            out.len() < html.len(),
            "{} bytes out of {}",
            out.len(),
            html.len()
        );
        assert!(out.contains("refund my order, it arrived broken 199"));
        assert!(out.contains("second cell"));
    }

    #[test]
    fn deep_html_is_cut_to_the_depth_limit_and_keeps_its_text() {
        let deep = format!(
            "{}refund my order{}",
            "<div>".repeat(5000),
            "</div>".repeat(5000)
        );
        let cut = limit_nesting(&deep, MAX_HTML_DEPTH);
        assert_eq!(depth_of(&cut), MAX_HTML_DEPTH);
        assert!(cut.contains("refund my order"));
        let lists = format!(
            "{}refund{}",
            "<ul><li>".repeat(3000),
            "</li></ul>".repeat(3000)
        );
        assert_eq!(
            depth_of(&limit_nesting(&lists, MAX_HTML_DEPTH)),
            MAX_HTML_DEPTH
        );
        let c = clean_pair("refund", &format!("<div>{lists}</div>"), &cfg());
        assert!(
            c.text.ends_with("refund"),
            "{}",
            truncate_bytes(&c.text, 200)
        );
    }

    #[test]
    fn flat_and_shallow_html_is_left_as_it_is() {
        let html =
            "<html><body><p>a<p>b<br><img src=x><table><tr><td>c<td>d</table><div/></body></html>";
        assert!(matches!(
            limit_nesting(html, 4),
            std::borrow::Cow::Borrowed(_)
        ));
        let many = "<p>one</p><li>two".repeat(10_000);
        assert!(matches!(
            limit_nesting(&many, 4),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_word_budget_follows_the_token_cap() {
        let body = "word ".repeat(10_000);
        let c = clean_pair(
            "subject here",
            &body,
            &CleanConfig::with_token_cap(64).unwrap(),
        );
        assert_eq!(c.text.split_whitespace().count(), 64);
    }

    #[test]
    fn a_ten_megabyte_body_is_cheap_and_sane() {
        let body = "The server room is too hot. ".repeat(400_000);
        assert!(body.len() > 10_000_000);
        let c = clean_pair("AC broken", &body, &cfg());
        assert_eq!(c.text.split_whitespace().count(), DEFAULT_TOKEN_CAP);
    }

    #[test]
    fn empty_input_is_flagged_not_an_error() {
        let c = clean_pair("", "  \n\n ", &cfg());
        assert!(c.empty);
        assert_eq!(c.text, "");
    }

    #[test]
    fn raw_multipart_quoted_printable_latin1() {
        let raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?ISO-8859-1?Q?R=E9clamation?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nLa facture =E9tait fausse, merci de la corriger.\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=x.bin\r\n\r\nAAECAwQFBgcICQ==\r\n--b1--\r\n";
        let c = clean_raw(raw.as_bytes(), &cfg()).unwrap();
        assert_eq!(
            c.text,
            "Réclamation\nLa facture était fausse, merci de la corriger."
        );
    }

    #[test]
    fn raw_html_only_base64() {
        // "<p>Refund for order 77 please</p>" in base64.
        let raw = "Subject: refund\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+UmVmdW5kIGZvciBvcmRlciA3NyBwbGVhc2U8L3A+\r\n";
        let c = clean_raw(raw.as_bytes(), &cfg()).unwrap();
        assert_eq!(c.text, "refund\nRefund for order 77 please");
    }

    #[test]
    fn sender_headers_never_reach_the_text() {
        let raw = "From: sales@hockey-club.example\r\nOrganization: NHL fans\r\nSubject: question\r\n\r\nWhat time is it?\r\n";
        let c = clean_raw(raw.as_bytes(), &cfg()).unwrap();
        assert!(!c.text.contains("hockey") && !c.text.contains("NHL"));
    }

    #[test]
    fn malformed_and_oversized_raw_messages_are_errors() {
        assert!(matches!(
            clean_raw(b"", &cfg()),
            Err(CleanError::Malformed(_))
        ));
        let small = CleanConfig {
            max_message_bytes: 10,
            ..cfg()
        };
        assert!(matches!(
            clean_raw(b"Subject: a long message", &small),
            Err(CleanError::TooLarge { .. })
        ));
    }

    #[test]
    fn binary_garbage_does_not_panic() {
        let bytes: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = clean_raw(&bytes, &cfg());
    }
}
