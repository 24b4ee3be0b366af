//! The REST API: router and handlers ([`server`]), health bodies
//! ([`types`]; the API bodies are `mailsort_shared::api`) and the OpenAPI
//! document ([`openapi`]).

pub mod openapi;
pub mod server;
pub mod types;
