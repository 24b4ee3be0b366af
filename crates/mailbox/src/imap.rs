//! IMAP: connecting (TLS with rustls, STARTTLS, or plain text on loopback
//! only), reading an account's folders for import, and the INBOX store
//! that `sort` files from. async-imap speaks the protocol; a private
//! current-thread runtime keeps this module's API blocking like the rest.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_imap::types::NameAttribute;
use async_imap::{Client, Session};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::error::MailboxError;
use crate::folders::{self};
use crate::import::{Format, Found, Gathered, ImportOptions, Imported, assemble, too_large};
use crate::message::{self, RawMessage};
use crate::sort::{ABSTAIN_KEYWORD, Pending, SORTED_KEYWORD, Store};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, port 993).
    Tls,
    /// Plain connect, then STARTTLS before login (`imap://`, port 143).
    StartTls,
    /// No TLS: loopback only, and only when asked for.
    Plain,
}

/// One IMAP account.
#[derive(Clone)]
pub struct ImapAccount {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub security: Security,
    /// Extra CA certificates (PEM) to trust, e.g. a self-signed server's.
    pub ca_file: Option<PathBuf>,
}

impl Debug for ImapAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}:{} ({:?})",
            self.user, self.host, self.port, self.security
        )
    }
}

/// Whether `s` names an IMAP account rather than a path.
pub fn is_imap_url(s: &str) -> bool {
    s.starts_with("imap://") || s.starts_with("imaps://")
}

impl ImapAccount {
    /// Parses `imaps://USER@HOST[:PORT]` or `imap://USER@HOST[:PORT]`
    /// (`%40` in USER for an `@`). `imap://` means STARTTLS unless
    /// `allow_plaintext` is set, which only loopback hosts accept.
    pub fn from_url(
        url: &str,
        password: String,
        allow_plaintext: bool,
        ca_file: Option<PathBuf>,
    ) -> Result<Self, MailboxError> {
        let bad = || MailboxError::BadUrl(url.to_string());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (user, hostport) = rest.rsplit_once('@').ok_or_else(bad)?;
        let user = user.replace("%40", "@");
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (hostport.to_string(), None),
        };
        if host.is_empty() || user.is_empty() {
            return Err(bad());
        }
        let security = match scheme {
            "imaps" => Security::Tls,
            "imap" if allow_plaintext => {
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback());
                if !loopback {
                    return Err(MailboxError::Plaintext { host });
                }
                Security::Plain
            }
            "imap" => Security::StartTls,
            _ => return Err(bad()),
        };
        let port = port.unwrap_or(if security == Security::Tls { 993 } else { 143 });
        Ok(Self {
            host,
            port,
            user,
            password,
            security,
            ca_file,
        })
    }

    fn url(&self) -> String {
        let scheme = if self.security == Security::Tls {
            "imaps"
        } else {
            "imap"
        };
        format!("{scheme}://{}@{}:{}", self.user, self.host, self.port)
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}
type Stream = Box<dyn Io>;

/// Collects the answer of a command that streams one.
trait AllOf<T>: futures::Stream<Item = async_imap::error::Result<T>> + Sized {
    async fn all(self, what: impl Into<String>) -> Result<Vec<T>, MailboxError> {
        self.try_collect().await.map_err(MailboxError::imap(what))
    }
}

impl<T, S: futures::Stream<Item = async_imap::error::Result<T>>> AllOf<T> for S {}

/// What the server says it can do.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Capabilities {
    pub idle: bool,
    pub r#move: bool,
    pub uidplus: bool,
    pub gmail: bool,
}

/// A logged-in session and the runtime that drives it.
pub struct Connection {
    rt: tokio::runtime::Runtime,
    session: Option<Session<Stream>>,
    pub caps: Capabilities,
    /// The hierarchy delimiter (from `LIST "" ""`).
    pub delimiter: Option<String>,
    account: ImapAccount,
}

fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, MailboxError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = ca_file {
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| MailboxError::io(ca, std::io::Error::other(e.to_string())))?;
        for c in certs {
            let c = c.map_err(|e| MailboxError::io(ca, std::io::Error::other(e.to_string())))?;
            roots
                .add(c)
                .map_err(|e| MailboxError::io(ca, std::io::Error::other(e.to_string())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailboxError::Tls {
            host: String::new(),
            source: std::io::Error::other(e.to_string()),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Connection {
    /// Connects and logs in.
    pub fn open(account: &ImapAccount) -> Result<Self, MailboxError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| MailboxError::io(Path::new("tokio runtime"), e))?;
        let session = rt.block_on(connect(account))?;
        let mut c = Self {
            rt,
            session: Some(session),
            caps: Capabilities::default(),
            delimiter: None,
            account: account.clone(),
        };
        c.caps = c.with(|s| {
            Box::pin(async move {
                let caps = s
                    .capabilities()
                    .await
                    .map_err(MailboxError::imap("CAPABILITY"))?;
                Ok(Capabilities {
                    idle: caps.has_str("IDLE"),
                    r#move: caps.has_str("MOVE"),
                    uidplus: caps.has_str("UIDPLUS"),
                    gmail: caps.has_str("X-GM-EXT-1"),
                })
            })
        })?;
        c.delimiter = c.with(|s| {
            Box::pin(async move {
                let names: Vec<_> = s
                    .list(Some(""), Some("\"\""))
                    .await
                    .map_err(MailboxError::imap("LIST"))?
                    .all("LIST")
                    .await?;
                Ok(names
                    .first()
                    .and_then(|n| n.delimiter().map(str::to_string)))
            })
        })?;
        Ok(c)
    }

    /// Runs one async step on the session.
    fn with<R>(
        &mut self,
        f: impl for<'a> FnOnce(&'a mut Session<Stream>) -> BoxFuture<'a, Result<R, MailboxError>>,
    ) -> Result<R, MailboxError> {
        let session = self
            .session
            .as_mut()
            .expect("the session is put back after every IDLE");
        self.rt.block_on(f(session))
    }

    /// Every selectable mailbox: (name, label).
    pub fn mailboxes(&mut self) -> Result<Vec<(String, String)>, MailboxError> {
        let delimiter = self.delimiter.clone();
        self.with(|s| {
            Box::pin(async move {
                let names: Vec<_> = s
                    .list(Some(""), Some("*"))
                    .await
                    .map_err(MailboxError::imap("LIST"))?
                    .all("LIST")
                    .await?;
                let mut out: Vec<(String, String)> = names
                    .iter()
                    .filter(|n| {
                        !n.attributes()
                            .iter()
                            .any(|a| matches!(a, NameAttribute::NoSelect))
                    })
                    .map(|n| {
                        let label = folders::label_of_imap(n.name(), delimiter.as_deref());
                        (n.name().to_string(), label)
                    })
                    .collect();
                out.sort();
                Ok(out)
            })
        })
    }

    pub fn logout(mut self) {
        let _ = self.with(|s| {
            Box::pin(async move { s.logout().await.map_err(MailboxError::imap("LOGOUT")) })
        });
    }
}

async fn connect(account: &ImapAccount) -> Result<Session<Stream>, MailboxError> {
    let addr = format!("{}:{}", account.host, account.port);
    let tcp = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect(&addr))
        .await
        .map_err(|_| MailboxError::Connect {
            addr: addr.clone(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 30 s"),
        })?
        .map_err(|source| MailboxError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let tls_err = |source: std::io::Error| MailboxError::Tls {
        host: account.host.clone(),
        source,
    };
    let server_name = || {
        ServerName::try_from(account.host.clone())
            .map_err(|e| tls_err(std::io::Error::other(e.to_string())))
    };
    let client: Client<Stream> = match account.security {
        Security::Tls => {
            let tls = tls_connector(account.ca_file.as_deref())?
                .connect(server_name()?, tcp)
                .await
                .map_err(tls_err)?;
            let mut c = Client::new(Box::new(tls) as Stream);
            greeting(&mut c).await?;
            c
        }
        Security::StartTls => {
            let mut c = Client::new(Box::new(tcp) as Stream);
            greeting(&mut c).await?;
            c.run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(MailboxError::imap("STARTTLS"))?;
            let tcp = c.into_inner();
            let tls = tls_connector(account.ca_file.as_deref())?
                .connect(server_name()?, tcp)
                .await
                .map_err(tls_err)?;
            Client::new(Box::new(tls) as Stream)
        }
        Security::Plain => {
            let mut c = Client::new(Box::new(tcp) as Stream);
            greeting(&mut c).await?;
            c
        }
    };
    client
        .login(&account.user, &account.password)
        .await
        .map_err(|(e, _)| MailboxError::Login {
            user: account.user.clone(),
            message: e.to_string(),
        })
}

async fn greeting(c: &mut Client<Stream>) -> Result<(), MailboxError> {
    c.read_response()
        .await
        .map_err(|e| MailboxError::io(Path::new("IMAP greeting"), e))?
        .ok_or_else(|| {
            MailboxError::io(
                Path::new("IMAP greeting"),
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before greeting"),
            )
        })?;
    Ok(())
}

/// Reads an account's folders (read-only: EXAMINE and BODY.PEEK), each
/// folder a label.
pub fn import_imap(account: &ImapAccount, opts: &ImportOptions) -> Result<Imported, MailboxError> {
    let mut conn = Connection::open(account)?;
    let mut g = Gathered::default();
    for (name, label) in conn.mailboxes()? {
        if !opts.filter.allows(&label) {
            g.folders_left_out.push(label);
            continue;
        }
        let max = opts.max_message_bytes;
        let n = name.clone();
        let sizes: Vec<(u32, u32)> = conn.with(|s| {
            Box::pin(async move {
                let mb = s
                    .examine(&n)
                    .await
                    .map_err(MailboxError::imap(format!("EXAMINE {n}")))?;
                if mb.exists == 0 {
                    return Ok(Vec::new());
                }
                let f: Vec<_> = s
                    .uid_fetch("1:*", "(UID RFC822.SIZE)")
                    .await
                    .map_err(MailboxError::imap(format!("FETCH sizes in {n}")))?
                    .all(format!("FETCH sizes in {n}"))
                    .await?;
                Ok(f.iter()
                    .filter_map(|m| Some((m.uid?, m.size.unwrap_or(0))))
                    .collect())
            })
        })?;
        let mut wanted = Vec::new();
        for (uid, size) in sizes {
            if size as u64 > max {
                g.skipped.push(crate::import::Skipped {
                    at: format!("{}/{name};UID={uid}", account.url()),
                    reason: too_large(size as u64, opts),
                });
            } else {
                wanted.push(uid);
            }
        }
        for chunk in wanted.chunks(200) {
            let set = uid_set(chunk);
            let n = name.clone();
            let bodies: Vec<(u32, Vec<u8>)> = conn.with(|s| {
                Box::pin(async move {
                    let f: Vec<_> = s
                        .uid_fetch(&set, "(UID BODY.PEEK[])")
                        .await
                        .map_err(MailboxError::imap(format!("FETCH in {n}")))?
                        .all(format!("FETCH in {n}"))
                        .await?;
                    Ok(f.iter()
                        .filter_map(|m| Some((m.uid?, m.body()?.to_vec())))
                        .collect())
                })
            })?;
            for (uid, bytes) in bodies {
                g.found.push(Found {
                    labels: vec![label.clone()],
                    message: RawMessage {
                        location: format!("{}/{name};UID={uid}", account.url()),
                        bytes,
                    },
                });
            }
        }
    }
    conn.logout();
    Ok(assemble(account.url(), Format::Imap, g, opts))
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What `sort` remembers between runs for one account's INBOX.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImapState {
    pub uid_validity: u32,
    /// Every message with a UID up to this one has been handled.
    pub last_uid: u32,
}

/// An IMAP account's INBOX as `sort`'s store.
pub struct ImapStore {
    conn: Connection,
    state_path: PathBuf,
    state: ImapState,
    /// Handled in the current pass (highest UID), and deferred ones.
    handled_max: u32,
    deferred: Vec<u32>,
    /// Mailboxes known to exist.
    existing: Vec<String>,
    max_message_bytes: u64,
    /// Log lines about the store itself (UIDVALIDITY changes, fallbacks).
    pub notices: Vec<String>,
}

impl ImapStore {
    /// Connects, selects INBOX and reads the state file (a missing file is
    /// a first run; a UIDVALIDITY change rescans INBOX, which is safe since
    /// filed mail has left it and kept mail carries a keyword).
    pub fn open(
        account: &ImapAccount,
        state_path: &Path,
        max_message_bytes: u64,
        tag_mode: bool,
    ) -> Result<Self, MailboxError> {
        let mut conn = Connection::open(account)?;
        if !tag_mode && !conn.caps.r#move && !conn.caps.uidplus {
            return Err(MailboxError::Unsupported(
                "MOVE (RFC 6851) or UIDPLUS (for COPY + UID EXPUNGE)",
            ));
        }
        let mut notices = Vec::new();
        if !conn.caps.r#move && !tag_mode {
            notices.push(
                "the server has no MOVE: filing with COPY, STORE \\Deleted and UID EXPUNGE".into(),
            );
        }
        if !conn.caps.idle {
            notices.push("the server has no IDLE: polling for new mail".into());
        }
        let uid_validity = conn.with(|s| {
            Box::pin(async move {
                let mb = s
                    .select("INBOX")
                    .await
                    .map_err(MailboxError::imap("SELECT INBOX"))?;
                Ok(mb.uid_validity.unwrap_or(0))
            })
        })?;
        let mut state = match fs::read(state_path) {
            Ok(b) => serde_json::from_slice::<ImapState>(&b).map_err(|e| MailboxError::State {
                path: state_path.display().to_string(),
                why: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ImapState {
                uid_validity,
                last_uid: 0,
            },
            Err(e) => return Err(MailboxError::io(state_path, e)),
        };
        if state.uid_validity != uid_validity {
            notices.push(format!(
                "INBOX's UIDVALIDITY changed from {} to {uid_validity}: its UIDs were renumbered, so all of INBOX is looked at again",
                state.uid_validity
            ));
            state = ImapState {
                uid_validity,
                last_uid: 0,
            };
        }
        let mut store = Self {
            conn,
            state_path: state_path.to_path_buf(),
            state,
            handled_max: 0,
            deferred: Vec::new(),
            existing: Vec::new(),
            max_message_bytes,
            notices,
        };
        store.existing = store
            .conn
            .mailboxes()?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        store.save()?;
        Ok(store)
    }

    /// The current state (as persisted at the last checkpoint).
    pub fn state(&self) -> &ImapState {
        &self.state
    }

    /// Whether the server speaks Gmail's extensions (labels in tag mode).
    pub fn is_gmail(&self) -> bool {
        self.conn.caps.gmail
    }

    fn save(&self) -> Result<(), MailboxError> {
        if let Some(dir) = self.state_path.parent() {
            fs::create_dir_all(dir).map_err(|e| MailboxError::io(dir, e))?;
        }
        let tmp = self.state_path.with_extension("tmp");
        let json = serde_json::to_vec_pretty(&self.state).expect("the state is plain numbers");
        fs::write(&tmp, json).map_err(|e| MailboxError::io(&tmp, e))?;
        fs::rename(&tmp, &self.state_path).map_err(|e| MailboxError::io(&self.state_path, e))
    }

    fn ensure_mailbox(&mut self, name: &str) -> Result<(), MailboxError> {
        if self.existing.iter().any(|e| e == name) {
            return Ok(());
        }
        let n = name.to_string();
        self.conn.with(|s| {
            Box::pin(async move {
                if let Err(e) = s.create(&n).await {
                    // Another client may have created it meanwhile.
                    let names: Vec<_> = s
                        .list(Some(""), Some(&format!("\"{n}\"")))
                        .await
                        .map_err(MailboxError::imap("LIST"))?
                        .all("LIST")
                        .await?;
                    if names.is_empty() {
                        return Err(MailboxError::Imap {
                            context: format!("CREATE {n}"),
                            source: e,
                        });
                    }
                }
                let _ = s.subscribe(&n).await;
                Ok(())
            })
        })?;
        self.existing.push(name.to_string());
        Ok(())
    }

    fn store_flags(&mut self, uid: u32, flags: &str) -> Result<(), MailboxError> {
        let q = format!("+FLAGS.SILENT ({flags})");
        self.conn.with(|s| {
            Box::pin(async move {
                let _: Vec<_> = s
                    .uid_store(uid.to_string(), &q)
                    .await
                    .map_err(MailboxError::imap(format!("STORE {uid}")))?
                    .all(format!("STORE {uid}"))
                    .await?;
                Ok(())
            })
        })
    }

    /// Whether `mailbox` already holds a message with this Message-ID (an
    /// interrupted COPY + EXPUNGE). Reselects INBOX afterwards.
    fn already_in(&mut self, mailbox: &str, message_id: &str) -> Result<bool, MailboxError> {
        let mb = mailbox.to_string();
        let query = format!("HEADER Message-ID \"{}\"", message_id.replace('"', ""));
        self.conn.with(|s| {
            Box::pin(async move {
                s.examine(&mb)
                    .await
                    .map_err(MailboxError::imap(format!("EXAMINE {mb}")))?;
                let found = s
                    .uid_search(&query)
                    .await
                    .map_err(MailboxError::imap(format!("SEARCH {mb}")))?;
                s.select("INBOX")
                    .await
                    .map_err(MailboxError::imap("SELECT INBOX"))?;
                Ok(!found.is_empty())
            })
        })
    }
}

const FILING_KEYWORD: &str = "$MailsortFiling";

impl Store for ImapStore {
    fn pending(&mut self, limit: usize) -> Result<Vec<Pending>, MailboxError> {
        let from = self.state.last_uid + 1;
        let query = format!(
            "UID {from}:* NOT KEYWORD {ABSTAIN_KEYWORD} NOT KEYWORD {SORTED_KEYWORD} NOT DELETED"
        );
        let mut uids: Vec<u32> = self.conn.with(|s| {
            Box::pin(async move {
                let u = s
                    .uid_search(&query)
                    .await
                    .map_err(MailboxError::imap("SEARCH INBOX"))?;
                Ok(u.into_iter().collect())
            })
        })?;
        // `n:*` always includes the highest UID, even below n.
        uids.retain(|u| *u >= from && !self.deferred.contains(u));
        uids.sort_unstable();
        uids.truncate(limit);
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(&uids);
        let max = self.max_message_bytes;
        let mut got: BTreeMap<u32, (Vec<u8>, bool)> = self.conn.with(|s| Box::pin(async move {
            let f: Vec<_> = s
                .uid_fetch(&set, "(UID RFC822.SIZE FLAGS)")
                .await
                .map_err(MailboxError::imap("FETCH INBOX"))?
                .all("FETCH INBOX")
                .await?;
            Ok(f.iter()
                .filter_map(|m| {
                    let filing = m.flags().any(|fl| matches!(fl, async_imap::types::Flag::Custom(ref c) if c == FILING_KEYWORD));
                    Some((m.uid?, (Vec::new(), filing || m.size.unwrap_or(0) as u64 > max)))
                })
                .collect())
        }))?;
        let small: Vec<u32> = got
            .iter()
            .filter(|(_, (_, flag))| !*flag)
            .map(|(u, _)| *u)
            .collect();
        // Oversized messages and interrupted filings are fetched too: the
        // first are kept unread (empty bytes), the second need their Message-ID.
        let all = uid_set(&got.keys().copied().collect::<Vec<_>>());
        let bodies: Vec<(u32, Vec<u8>)> = self.conn.with(|s| {
            Box::pin(async move {
                let f: Vec<_> = s
                    .uid_fetch(
                        &all,
                        "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] BODY.PEEK[])",
                    )
                    .await
                    .map_err(MailboxError::imap("FETCH INBOX"))?
                    .all("FETCH INBOX")
                    .await?;
                Ok(f.iter()
                    .filter_map(|m| {
                        let uid = m.uid?;
                        let body = if small.contains(&uid) {
                            m.body().unwrap_or_default().to_vec()
                        } else {
                            m.header().unwrap_or_default().to_vec()
                        };
                        Some((uid, body))
                    })
                    .collect())
            })
        })?;
        for (uid, b) in bodies {
            if let Some(e) = got.get_mut(&uid) {
                e.0 = b;
            }
        }
        Ok(got
            .into_iter()
            .map(|(uid, (bytes, oversized_or_filing))| {
                let message_id = message::headers(&bytes).message_id;
                let bytes = if oversized_or_filing && bytes.len() as u64 > max {
                    Vec::new()
                } else {
                    bytes
                };
                Pending {
                    key: uid.to_string(),
                    uid,
                    message_id,
                    bytes,
                }
            })
            .collect())
    }

    fn file(&mut self, msg: &Pending, label: &str, keywords: &[&str]) -> Result<(), MailboxError> {
        let mailbox = folders::imap_mailbox(label, self.conn.delimiter.as_deref());
        self.ensure_mailbox(&mailbox)?;
        if !keywords.is_empty() {
            self.store_flags(msg.uid, &keywords.join(" "))?;
        }
        let uid = msg.uid;
        if self.conn.caps.r#move {
            let mb = mailbox.clone();
            self.conn.with(|s| {
                Box::pin(async move {
                    s.uid_mv(uid.to_string(), &mb)
                        .await
                        .map_err(MailboxError::imap(format!("MOVE {uid} to {mb}")))
                })
            })?;
        } else {
            // COPY, then delete the original only once the copy is known to
            // be there. A kill in between leaves the $MailsortFiling keyword:
            // the next run finds the copy by Message-ID and does not copy twice.
            let copied_before = match &msg.message_id {
                Some(mid) => self.already_in(&mailbox, mid)?,
                None => false,
            };
            if !copied_before {
                self.store_flags(uid, FILING_KEYWORD)?;
                let mb = mailbox.clone();
                self.conn.with(|s| {
                    Box::pin(async move {
                        s.uid_copy(uid.to_string(), &mb)
                            .await
                            .map_err(MailboxError::imap(format!("COPY {uid} to {mb}")))
                    })
                })?;
            }
            self.store_flags(uid, "\\Deleted")?;
            self.conn.with(|s| {
                Box::pin(async move {
                    let _: Vec<_> = s
                        .uid_expunge(uid.to_string())
                        .await
                        .map_err(MailboxError::imap(format!("UID EXPUNGE {uid}")))?
                        .all(format!("UID EXPUNGE {uid}"))
                        .await?;
                    Ok(())
                })
            })?;
        }
        self.handled_max = self.handled_max.max(uid);
        Ok(())
    }

    fn tag(&mut self, msg: &Pending, keywords: &[&str]) -> Result<(), MailboxError> {
        let (labels, flags): (Vec<&str>, Vec<&str>) = keywords
            .iter()
            .partition(|k| self.conn.caps.gmail && !k.starts_with('$'));
        if !flags.is_empty() {
            self.store_flags(msg.uid, &flags.join(" "))?;
        }
        for l in labels {
            let uid = msg.uid;
            let q = format!("+X-GM-LABELS (\"{}\")", l.replace('"', ""));
            self.conn.with(|s| {
                Box::pin(async move {
                    let _: Vec<_> = s
                        .uid_store(uid.to_string(), &q)
                        .await
                        .map_err(MailboxError::imap("STORE X-GM-LABELS"))?
                        .all("STORE X-GM-LABELS")
                        .await?;
                    Ok(())
                })
            })?;
        }
        self.handled_max = self.handled_max.max(msg.uid);
        Ok(())
    }

    fn defer(&mut self, msg: &Pending) {
        self.deferred.push(msg.uid);
    }

    fn checkpoint(&mut self) -> Result<(), MailboxError> {
        let mut last = self.state.last_uid.max(self.handled_max);
        if let Some(first_deferred) = self.deferred.iter().min() {
            last = last
                .min(first_deferred.saturating_sub(1))
                .max(self.state.last_uid);
        }
        if last != self.state.last_uid {
            self.state.last_uid = last;
            self.save()?;
        }
        Ok(())
    }

    fn begin_pass(&mut self) {
        self.deferred.clear();
        self.handled_max = 0;
    }

    fn label_keyword(&self, label: &str) -> String {
        if self.conn.caps.gmail {
            label.to_string()
        } else {
            crate::sort::keyword_for(label)
        }
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), MailboxError> {
        if !self.conn.caps.idle {
            std::thread::sleep(timeout);
            return Ok(());
        }
        let session = self
            .conn
            .session
            .take()
            .expect("the session is put back after every IDLE");
        let result = self.conn.rt.block_on(async move {
            let mut idle = session.idle();
            idle.init().await.map_err(MailboxError::imap("IDLE"))?;
            let (wait, _stop) = idle.wait_with_timeout(timeout);
            wait.await.map_err(MailboxError::imap("IDLE"))?;
            idle.done().await.map_err(MailboxError::imap("DONE"))
        });
        match result {
            Ok(s) => {
                self.conn.session = Some(s);
                Ok(())
            }
            Err(e) => {
                // The connection is in an unknown state: start a fresh one.
                let account = self.conn.account.clone();
                self.conn = Connection::open(&account).map_err(|_| e)?;
                self.conn.with(|s| {
                    Box::pin(async move {
                        s.select("INBOX")
                            .await
                            .map_err(MailboxError::imap("SELECT INBOX"))?;
                        Ok(())
                    })
                })
            }
        }
    }
}
