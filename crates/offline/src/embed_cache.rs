//! Embeddings kept on disk, so that evaluating the same test split again
//! (another reranker, another fusion) does not embed it again: one
//! append-only file per encoder (its ONNX file's SHA-256), token cap and
//! width, under `~/.cache/mailsort/embeddings` (`MAILSORT_CACHE_DIR`
//! overrides). A record is the SHA-256 of the cleaned text, then its vector
//! as little-endian f32. A missing, short or unreadable file only means
//! misses: nothing depends on the cache being there.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mailsort_edge::EmbeddingCache;
use sha2::{Digest, Sha256};

/// The default folder: `$MAILSORT_CACHE_DIR/embeddings`, else
/// `$HOME/.cache/mailsort/embeddings`.
pub fn default_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("MAILSORT_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/mailsort"),
    };
    Some(base.join("embeddings"))
}

/// A file of embeddings for one encoder, token cap and width.
pub struct FileCache {
    dim: usize,
    known: Mutex<HashMap<[u8; 32], Vec<f32>>>,
    writer: Mutex<Option<BufWriter<File>>>,
    path: PathBuf,
}

fn key(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl FileCache {
    /// Opens (or starts) the cache for the encoder `model_id`
    /// (`Embedder::model_id`: its file's SHA-256, tagged with the engine
    /// where that changes the numbers), cutting at `token_cap`, `dim` wide,
    /// in `dir`. Never fails: a cache that cannot be read starts empty, one
    /// that cannot be written keeps what it learns in memory only.
    pub fn open(dir: &Path, model_id: &str, token_cap: usize, dim: usize) -> Self {
        let prefix: String = model_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect();
        let path = dir.join(format!("{prefix}-cap{token_cap}-d{dim}.bin"));
        let record = 32 + 4 * dim;
        let mut known = HashMap::new();
        if let Ok(bytes) = fs::read(&path) {
            // A record cut short by a crash is cut off, so that new records
            // start where a whole one ended.
            let whole = bytes.len() - bytes.len() % record;
            if whole < bytes.len()
                && let Ok(f) = OpenOptions::new().write(true).open(&path)
            {
                let _ = f.set_len(whole as u64);
            }
            for r in bytes[..whole].chunks_exact(record) {
                let k: [u8; 32] = r[..32]
                    .try_into()
                    .expect("a record starts with 32 key bytes");
                let v = r[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().expect("chunks of 4")))
                    .collect();
                known.insert(k, v);
            }
        }
        let writer = fs::create_dir_all(dir)
            .and_then(|_| OpenOptions::new().create(true).append(true).open(&path))
            .ok()
            .map(BufWriter::new);
        Self {
            dim,
            known: Mutex::new(known),
            writer: Mutex::new(writer),
            path,
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many embeddings it holds.
    pub fn len(&self) -> usize {
        self.known
            .lock()
            .expect("no thread panics holding the cache")
            .len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes what was added since the last flush.
    pub fn flush(&self) {
        if let Some(w) = self
            .writer
            .lock()
            .expect("no thread panics holding the cache")
            .as_mut()
        {
            let _ = w.flush();
        }
    }
}

impl EmbeddingCache for FileCache {
    fn get(&self, text: &str) -> Option<Vec<f32>> {
        self.known
            .lock()
            .expect("no thread panics holding the cache")
            .get(&key(text))
            .cloned()
    }

    fn put(&self, text: &str, embedding: &[f32]) {
        if embedding.len() != self.dim {
            return;
        }
        let k = key(text);
        let mut record = Vec::with_capacity(32 + 4 * self.dim);
        record.extend_from_slice(&k);
        for x in embedding {
            record.extend_from_slice(&x.to_le_bytes());
        }
        let mut writer = self
            .writer
            .lock()
            .expect("no thread panics holding the cache");
        if let Some(w) = writer.as_mut()
            && w.write_all(&record).is_err()
        {
            // A full disk: keep going from memory.
            *writer = None;
        }
        drop(writer);
        self.known
            .lock()
            .expect("no thread panics holding the cache")
            .insert(k, embedding.to_vec());
    }
}

impl Drop for FileCache {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_survive_a_reopen_and_a_torn_record_is_dropped() {
        let dir = std::env::temp_dir().join(format!("mailsort-cache-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cache = FileCache::open(&dir, "ab".repeat(32).as_str(), 256, 3);
        assert!(cache.get("hello").is_none());
        cache.put("hello", &[1.0, 2.0, 3.0]);
        cache.put("too short", &[1.0]);
        let path = cache.path().to_path_buf();
        drop(cache);
        // A crash half-way through a second record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7u8; 40]).unwrap();
        drop(f);
        let again = FileCache::open(&dir, "ab".repeat(32).as_str(), 256, 3);
        assert_eq!(again.get("hello"), Some(vec![1.0, 2.0, 3.0]));
        assert!(again.get("too short").is_none());
        assert_eq!(again.len(), 1);
        // What is added after the torn record reads back too.
        again.put("world", &[4.0, 5.0, 6.0]);
        drop(again);
        let third = FileCache::open(&dir, "ab".repeat(32).as_str(), 256, 3);
        assert_eq!(third.get("world"), Some(vec![4.0, 5.0, 6.0]));
        assert_eq!(third.len(), 2);
        // Another token cap is another file.
        assert!(FileCache::open(&dir, "ab".repeat(32).as_str(), 128, 3).is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
