//! Labelled e-mails in JSON Lines, the shape of `../shared/datasets`.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::types::EmailInput;

/// One labelled (or, for classification, unlabelled) e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledEmail {
    pub id: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    /// The whole message with headers, where the set has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl LabelledEmail {
    /// What the classifier reads: subject and body where the row has them.
    /// `raw` is then deliberately not used, since its sender headers can
    /// leak labels (20 Newsgroups). A row with only `raw` (mail imported
    /// from a mailbox) is read from the raw message, which cleaning strips
    /// of headers, quotes and signatures.
    pub fn input(&self) -> EmailInput {
        match &self.raw {
            Some(raw) if self.subject.is_empty() && self.body.is_empty() => {
                EmailInput::Raw { raw: raw.clone() }
            }
            _ => EmailInput::Pair {
                subject: self.subject.clone(),
                body: self.body.clone(),
            },
        }
    }
}

impl LabelledEmail {
    /// The cleaned text that training and calibration read, by the same
    /// rule as `input`. A raw message that cannot be cleaned reads as empty
    /// (importers already skip what is not a message).
    pub fn cleaned_text(&self, config: &crate::clean::CleanConfig) -> String {
        crate::clean::clean(&self.input(), config)
            .map(|c| c.text)
            .unwrap_or_default()
    }
}

/// A fault in a JSONL file, with the 1-based line it was found on.
#[derive(Debug, Error)]
pub enum DatasetError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("reading line {line}")]
    Io { line: usize, source: std::io::Error },
    #[error("no e-mails found")]
    Empty,
}

/// Reads JSON Lines. Blank lines are skipped; `require_label` makes a missing
/// label an error. `id` may be a string or a number.
pub fn read_jsonl(
    reader: impl BufRead,
    require_label: bool,
) -> Result<Vec<LabelledEmail>, DatasetError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|source| DatasetError::Io { line: n, source })?;
        if let Some(row) = parse_line(&line, n, require_label)? {
            out.push(row);
        }
    }
    if out.is_empty() {
        return Err(DatasetError::Empty);
    }
    Ok(out)
}

/// One line of labelled JSONL (`n` counts from 1, for messages and the
/// default id); `None` for a blank line.
pub fn parse_line(
    line: &str,
    n: usize,
    require_label: bool,
) -> Result<Option<LabelledEmail>, DatasetError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
    }
    #[derive(Deserialize)]
    struct Row {
        id: Option<Id>,
        #[serde(default)]
        subject: Option<String>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        parent: Option<String>,
        #[serde(default)]
        raw: Option<String>,
    }
    if line.trim().is_empty() {
        return Ok(None);
    }
    let row: Row = serde_json::from_str(line).map_err(|e| DatasetError::Line {
        line: n,
        message: format!("not a JSON object of the expected shape: {e}"),
    })?;
    if row.subject.is_none() && row.body.is_none() && row.raw.is_none() {
        return Err(DatasetError::Line {
            line: n,
            message: "needs at least one of `subject`, `body` or `raw`".into(),
        });
    }
    let label = row.label.map(|l| l.trim().to_string());
    if require_label && label.as_deref().is_none_or(str::is_empty) {
        return Err(DatasetError::Line {
            line: n,
            message: "has no `label`".into(),
        });
    }
    let id = match row.id {
        Some(Id::S(s)) => s,
        Some(Id::N(n)) => n.to_string(),
        None => format!("line-{n}"),
    };
    let (subject, body) = match (row.subject, row.body, &row.raw) {
        (s, b, _) if s.is_some() || b.is_some() => (s.unwrap_or_default(), b.unwrap_or_default()),
        _ => (String::new(), String::new()),
    };
    Ok(Some(LabelledEmail {
        id,
        subject,
        body,
        label,
        parent: row.parent,
        raw: row.raw,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_and_names_the_bad_line() {
        let ok = "{\"id\": \"a\", \"subject\": \"\", \"body\": \"hi\", \"label\": \"x\"}\n\n{\"id\": 7, \"body\": \"yo\", \"label\": \"y\", \"parent\": \"p\"}\n";
        let rows = read_jsonl(ok.as_bytes(), true).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].id, "7");
        assert_eq!(rows[1].parent.as_deref(), Some("p"));

        let bad = "{\"id\": \"a\", \"body\": \"hi\", \"label\": \"x\"}\n{\"id\": \"b\", \"body\": \"hi\", \"label\": \n";
        let err = read_jsonl(bad.as_bytes(), true).unwrap_err().to_string();
        assert!(err.starts_with("line 2:"), "{err}");

        let unlabelled = "{\"id\": \"a\", \"body\": \"hi\"}";
        assert!(
            read_jsonl(unlabelled.as_bytes(), true)
                .unwrap_err()
                .to_string()
                .contains("line 1: has no `label`")
        );
        assert!(read_jsonl(unlabelled.as_bytes(), false).is_ok());
        assert!(matches!(
            read_jsonl("".as_bytes(), false),
            Err(DatasetError::Empty)
        ));
        assert!(
            read_jsonl("{\"id\": \"a\"}".as_bytes(), false)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
