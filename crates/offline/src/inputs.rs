//! Reading e-mails from files: .eml, mbox, labelled JSONL (optionally gzip),
//! or standard input (native only).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use mailsort_shared::dataset::{self, LabelledEmail};
use mailsort_shared::types::EmailInput;
use thiserror::Error;

/// Why an input file could not be read. Messages name the file; the cause
/// is the source (`{:#}` prints the whole chain).
#[derive(Debug, Error)]
pub enum InputError {
    #[error("{path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}")]
    Dataset {
        path: String,
        source: dataset::DatasetError,
    },
    #[error("{path}: message {index} of the mbox cannot be read")]
    Mbox {
        path: String,
        index: usize,
        source: std::io::Error,
    },
}

/// One e-mail to classify, with its gold label when the file has one.
#[derive(Debug, Clone)]
pub struct InputEmail {
    pub id: String,
    pub input: EmailInput,
    pub label: Option<String>,
}

fn open(path: &Path) -> Result<Box<dyn Read>, InputError> {
    let io = |source| InputError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(GzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}

/// Reads labelled JSONL (`.jsonl` or `.jsonl.gz`). Faults name the line.
pub fn read_labelled(path: &Path, require_label: bool) -> Result<Vec<LabelledEmail>, InputError> {
    dataset::read_jsonl(BufReader::new(open(path)?), require_label).map_err(|source| {
        InputError::Dataset {
            path: path.display().to_string(),
            source,
        }
    })
}

/// Reads any supported file by its name: `*.jsonl[.gz]`, `*.mbox`/`*.mbx`,
/// anything else as one raw message. `-` reads standard input, as JSONL if
/// it starts with `{`, else as one raw message.
pub fn read_any(path: &Path) -> Result<Vec<InputEmail>, InputError> {
    let name = path.to_string_lossy();
    let io = |source| InputError::Io {
        path: name.to_string(),
        source,
    };
    if name == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(io)?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            return from_jsonl_bytes(&bytes, "stdin");
        }
        return Ok(vec![raw_message("stdin".into(), &bytes)]);
    }
    if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") || name.ends_with(".json") {
        return Ok(read_labelled(path, false)?
            .into_iter()
            .map(from_labelled)
            .collect());
    }
    if name.ends_with(".mbox") || name.ends_with(".mbx") {
        let mut out = Vec::new();
        for (index, m) in
            mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(open(path)?))
                .enumerate()
        {
            let m = m.map_err(|source| InputError::Mbox {
                path: name.to_string(),
                index: index + 1,
                source,
            })?;
            out.push(raw_message(format!("{name}#{}", index + 1), m.contents()));
        }
        return Ok(out);
    }
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes).map_err(io)?;
    Ok(vec![raw_message(name.to_string(), &bytes)])
}

fn from_jsonl_bytes(bytes: &[u8], name: &str) -> Result<Vec<InputEmail>, InputError> {
    let rows = dataset::read_jsonl(bytes, false).map_err(|source| InputError::Dataset {
        path: name.to_string(),
        source,
    })?;
    Ok(rows.into_iter().map(from_labelled).collect())
}

fn from_labelled(row: LabelledEmail) -> InputEmail {
    let input = row.input();
    InputEmail {
        id: row.id,
        input,
        label: row.label,
    }
}

fn raw_message(id: String, bytes: &[u8]) -> InputEmail {
    InputEmail {
        id,
        input: EmailInput::Raw {
            raw: String::from_utf8_lossy(bytes).into_owned(),
        },
        label: None,
    }
}
