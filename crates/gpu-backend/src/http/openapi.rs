//! The OpenAPI 3.1 document served at `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::server;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailsort backend",
        description = "Reranks the candidate labels of ambiguous e-mails with a cross-encoder, and classifies whole e-mails for clients without an edge."
    ),
    paths(
        server::rerank,
        server::classify,
        server::health,
        server::ready,
        server::metrics,
        server::openapi
    ),
    components(schemas(mailsort_shared::api::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document as JSON, for `AppState`.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises")
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
