//! The REST API: router and handlers ([`server`]), health bodies
//! ([`types`]; the API bodies are `mailsort_shared::api`) and the OpenAPI
//! document ([`openapi`]); connections are accepted by [`listen`].

pub mod listen;
pub mod openapi;
pub mod server;
pub mod types;
