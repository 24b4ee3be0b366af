//! Reading e-mails from files: .eml, mbox, labelled JSONL (optionally gzip),
//! or standard input (native only).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
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
}

/// Why one input, or one e-mail in it, gave nothing to classify; `id`
/// names the e-mail (`file#n` in an mbox, `file:line` in JSONL) or the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{id}: {error}")]
pub struct InputFault {
    pub id: String,
    pub error: String,
}

/// E-mails of one input, one at a time, or what stopped each.
pub type EmailStream = Box<dyn Iterator<Item = Result<InputEmail, InputFault>>>;

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

/// Reads a whole input as [`stream_any`] does, stopping at the first
/// fault: for benchmarks over files known to be good.
pub fn read_any(path: &Path, max_bytes: usize) -> Result<Vec<InputEmail>, InputFault> {
    stream_any(path, max_bytes).collect()
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

/// Streams the e-mails of any supported input with bounded memory, the
/// format chosen by the name: `*.jsonl[.gz]` (and `.json`), `*.mbox`/`*.mbx`,
/// anything else as one raw message; `-` is standard input, as JSONL if it
/// starts with `{`, else as one raw message. JSONL is read line by line and
/// an mbox message by message. Messages over `max_bytes` and bad JSONL lines are faults of their own,
/// and the stream goes on. A path that cannot be read as a file (missing,
/// a directory, a symlink loop), or an mbox without a message, is one fault.
pub fn stream_any(path: &Path, max_bytes: usize) -> EmailStream {
    let name = path.to_string_lossy().to_string();
    let fault = |id: &str, error: String| -> EmailStream {
        Box::new(std::iter::once(Err(InputFault {
            id: id.to_string(),
            error,
        })))
    };
    if name == "-" {
        let mut stdin = BufReader::new(std::io::stdin());
        return match first_non_space(&mut stdin) {
            Err(e) => fault("stdin", format!("cannot read standard input: {e}")),
            Ok(Some(b'{')) => jsonl_stream(stdin, "stdin".into(), max_bytes),
            Ok(_) => Box::new(std::iter::once(read_capped(
                stdin, "stdin", None, max_bytes,
            ))),
        };
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return fault(&name, format!("cannot read {name}: {e}")),
    };
    if meta.is_dir() {
        return fault(&name, format!("{name} is a directory, not an e-mail file"));
    }
    let reader = match open(path) {
        Ok(r) => BufReader::new(r),
        Err(e) => return fault(&name, anyhow_like(&e)),
    };
    if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") || name.ends_with(".json") {
        return jsonl_stream(reader, name, max_bytes);
    }
    if name.ends_with(".mbox") || name.ends_with(".mbx") {
        return mbox_stream(reader, name, max_bytes);
    }
    Box::new(std::iter::once(read_capped(
        reader,
        &name,
        Some(meta.len()),
        max_bytes,
    )))
}

/// The error and its causes on one line.
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Skips leading whitespace; the first other byte, left unread.
fn first_non_space(r: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                r.consume(i);
                return Ok(Some(b));
            }
            None => {
                let n = buf.len();
                r.consume(n);
            }
        }
    }
}

/// One raw message, read up to `max_bytes` and refused past it.
fn read_capped(
    r: impl Read,
    name: &str,
    size: Option<u64>,
    max_bytes: usize,
) -> Result<InputEmail, InputFault> {
    let too_large = |size: String| InputFault {
        id: name.to_string(),
        error: format!("the message is {size} bytes, over the limit of {max_bytes}"),
    };
    if let Some(size) = size
        && size > max_bytes as u64
    {
        return Err(too_large(size.to_string()));
    }
    let mut bytes = Vec::new();
    r.take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputFault {
            id: name.to_string(),
            error: format!("cannot read {name}: {e}"),
        })?;
    if bytes.len() > max_bytes {
        return Err(too_large(format!("more than {max_bytes}")));
    }
    Ok(raw_message(name.to_string(), &bytes))
}

fn jsonl_stream(mut r: impl BufRead + 'static, name: String, max_bytes: usize) -> EmailStream {
    // JSON escapes can double a message's size, and the other fields add
    // a little: a longer line cannot hold a message under the limit.
    let max_line = 2 * max_bytes + 64 * 1024;
    let mut n = 0;
    let mut buf = Vec::new();
    Box::new(std::iter::from_fn(move || {
        loop {
            n += 1;
            buf.clear();
            let id = format!("{name}:{n}");
            let fault = |error: String| {
                Some(Err(InputFault {
                    id: id.clone(),
                    error,
                }))
            };
            let read = (&mut r)
                .take(max_line as u64 + 1)
                .read_until(b'\n', &mut buf);
            match read {
                Ok(0) => return None,
                Err(e) => return fault(format!("cannot read line {n}: {e}")),
                Ok(_) => {}
            }
            if buf.len() > max_line {
                // Skip the rest of the line, so the next one starts clean.
                if let Err(e) = r.skip_until(b'\n') {
                    return fault(format!("cannot read line {n}: {e}"));
                }
                return fault(format!("line {n} is longer than {max_line} bytes"));
            }
            let Ok(line) = std::str::from_utf8(&buf) else {
                return fault(format!("line {n} is not UTF-8"));
            };
            match dataset::parse_line(line, n, false) {
                Ok(None) => continue,
                Ok(Some(row)) => return Some(Ok(from_labelled(row))),
                Err(e) => return fault(e.to_string()),
            }
        }
    }))
}

fn mbox_stream(r: impl BufRead + 'static, name: String, max_bytes: usize) -> EmailStream {
    let mut messages = mail_parser::mailbox::mbox::MessageIterator::new(r).enumerate();
    let mut seen = 0;
    let mut done = false;
    Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        match messages.next() {
            Some((i, m)) => {
                seen += 1;
                let id = format!("{name}#{}", i + 1);
                Some(match m {
                    Err(e) => Err(InputFault {
                        id,
                        error: format!("message {} of the mbox cannot be read: {e}", i + 1),
                    }),
                    Ok(m) if m.contents().len() > max_bytes => Err(InputFault {
                        id,
                        error: format!(
                            "the message is {} bytes, over the limit of {max_bytes}",
                            m.contents().len()
                        ),
                    }),
                    Ok(m) => Ok(raw_message(id, m.contents())),
                })
            }
            None => {
                done = true;
                (seen == 0).then(|| {
                    Err(InputFault {
                        id: name.clone(),
                        error: format!(
                            "{name} holds no message (an mbox starts each one with a `From ` line)"
                        ),
                    })
                })
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(path: &Path, max: usize) -> Vec<Result<String, String>> {
        stream_any(path, max)
            .map(|r| {
                r.map(|e| e.id)
                    .map_err(|f| format!("{}: {}", f.id, f.error))
            })
            .collect()
    }

    #[test]
    fn a_directory_a_missing_file_and_a_symlink_loop_are_one_fault_each() {
        let dir = tempfile::tempdir().unwrap();
        let looped = dir.path().join("loop.eml");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        for p in [
            dir.path().to_path_buf(),
            dir.path().join("missing.eml"),
            looped,
        ] {
            let got = collect(&p, 1000);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].is_err(), "{got:?}");
        }
        assert!(
            collect(dir.path(), 1000)[0]
                .as_ref()
                .unwrap_err()
                .contains("is a directory")
        );
    }

    #[test]
    fn an_empty_or_garbage_mbox_is_a_fault_and_a_big_message_is_refused_alone() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.mbox");
        std::fs::write(&empty, "just some text\nwith no From line\n").unwrap();
        let got = collect(&empty, 1000);
        assert!(
            got.len() == 1 && got[0].as_ref().unwrap_err().contains("holds no message"),
            "{got:?}"
        );
        let mbox = dir.path().join("two.mbox");
        let big = "x".repeat(2000);
        std::fs::write(
            &mbox,
            format!("From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nhi\nFrom a@b Mon Jan  1 00:00:00 2024\nSubject: two\n\n{big}\nFrom a@b Mon Jan  1 00:00:00 2024\nSubject: three\n\nyo\n"),
        )
        .unwrap();
        let got = collect(&mbox, 1000);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].is_ok() && got[2].is_ok(), "{got:?}");
        assert!(
            got[1].as_ref().unwrap_err().contains("over the limit"),
            "{got:?}"
        );
    }

    #[test]
    fn jsonl_streams_line_by_line_past_bad_and_overlong_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.jsonl");
        let long = format!(
            "{{\"id\": \"long\", \"body\": \"{}\"}}",
            "y".repeat(100_000)
        );
        std::fs::write(
            &f,
            format!("{{\"id\": \"a\", \"body\": \"hi\"}}\nnot json\n{long}\n\n{{\"id\": \"b\", \"subject\": \"s\"}}\n"),
        )
        .unwrap();
        let got = collect(&f, 100);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], Ok("a".to_string()));
        assert!(got[1].as_ref().unwrap_err().contains("line 2"), "{got:?}");
        assert!(
            got[2].as_ref().unwrap_err().contains("longer than"),
            "{got:?}"
        );
        assert_eq!(got[3], Ok("b".to_string()));
    }

    #[test]
    fn an_oversized_eml_is_refused_by_its_size_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big.eml");
        // Invalid UTF-8 must not change the size reported.
        std::fs::write(&f, vec![0xff; 5000]).unwrap();
        let got = collect(&f, 1000);
        assert!(
            got[0].as_ref().unwrap_err().contains("is 5000 bytes"),
            "{got:?}"
        );
    }
}
