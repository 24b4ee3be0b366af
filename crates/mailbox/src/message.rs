//! What mailsort reads from one raw message without classifying it: the
//! Message-ID that identifies it across folders and restarts, and Gmail's
//! labels. Parsing is mail-parser's; a message it cannot parse still has
//! its bytes and a fallback id.

use mail_parser::MessageParser;

/// A raw message and where it was found.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// Where the message was read (a file, `mbox#n`, `imap:UID`).
    pub location: String,
    pub bytes: Vec<u8>,
}

/// Headers mailsort needs from a message.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    /// The Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// The raw `X-Gmail-Labels` value.
    pub gmail_labels: Option<String>,
}

/// Reads the headers mailsort uses. Only the header block is parsed.
pub fn headers(bytes: &[u8]) -> Headers {
    let Some(m) = MessageParser::new().parse_headers(bytes) else {
        return Headers::default();
    };
    Headers {
        message_id: m
            .message_id()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        gmail_labels: m
            .header_raw("X-Gmail-Labels")
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" ")),
    }
}

/// Whether the bytes look like a message at all: a header line before the
/// first blank line.
pub fn looks_like_message(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let colon = first.iter().position(|&b| b == b':');
    matches!(colon, Some(i) if i > 0 && first[..i].iter().all(|b| b.is_ascii_graphic()))
}

/// The text the classifier reads for a raw message: the bytes as UTF-8,
/// with invalid sequences replaced (MIME decoding happens in cleaning).
pub fn raw_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_id_and_gmail_labels() {
        let raw =
            b"Message-ID: <abc@x.example>\r\nX-Gmail-Labels: Inbox,Work\r\nSubject: hi\r\n\r\nbody";
        let h = headers(raw);
        assert_eq!(h.message_id.as_deref(), Some("abc@x.example"));
        assert_eq!(h.gmail_labels.as_deref(), Some("Inbox,Work"));
        assert!(looks_like_message(raw));
        assert!(!looks_like_message(b"just some text\nwithout headers"));
    }
}
