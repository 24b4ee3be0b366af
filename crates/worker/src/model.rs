//! The edge classifier, loaded once per isolate from the Worker's static
//! assets (the 23 MB model cannot ride inside the script: see README).

use std::cell::RefCell;
use std::rc::Rc;

use mailsort_edge::EdgeClassifier;
use mailsort_shared::bundle::Bundle;
use worker::{Env, Fetcher};

use crate::error::ApiError;

/// Asset paths, as uploaded from `assets/` by wrangler.
const BUNDLE_ASSET: &str = "https://assets.invalid/bundle.msb";
const MODEL_ASSET: &str = "https://assets.invalid/model_int8.onnx";

thread_local! {
    // An isolate runs one request at a time on one thread; this cell keeps
    // the loaded classifier for every later request the isolate serves.
    static EDGE: RefCell<Option<Rc<EdgeClassifier>>> = const { RefCell::new(None) };
}

async fn asset(assets: &Fetcher, url: &str) -> Result<Vec<u8>, ApiError> {
    let mut response = assets.fetch(url, None).await?;
    if response.status_code() != 200 {
        return Err(ApiError::internal(format!(
            "static asset {url} answered {}: deploy assets/ with the Worker (scripts/build/worker.sh)",
            response.status_code()
        )));
    }
    Ok(response.bytes().await?)
}

/// The classifier, loading it on the isolate's first request.
pub async fn edge(env: &Env) -> Result<Rc<EdgeClassifier>, ApiError> {
    if let Some(edge) = EDGE.with(|cell| cell.borrow().clone()) {
        return Ok(edge);
    }
    let assets = env.assets("ASSETS")?;
    let bundle = asset(&assets, BUNDLE_ASSET).await?;
    let model = asset(&assets, MODEL_ASSET).await?;
    let bundle =
        Bundle::decode(&bundle).map_err(|e| ApiError::internal(format!("bundle.msb: {e}")))?;
    let edge = Rc::new(
        EdgeClassifier::new(bundle, &model)
            .map_err(|e| ApiError::internal(format!("model_int8.onnx: {e}")))?,
    );
    EDGE.with(|cell| *cell.borrow_mut() = Some(edge.clone()));
    Ok(edge)
}

/// Whether this isolate has the classifier loaded already.
pub fn is_loaded() -> bool {
    EDGE.with(|cell| cell.borrow().is_some())
}
