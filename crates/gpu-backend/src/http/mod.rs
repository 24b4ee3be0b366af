//! The REST API: router and handlers ([`server`]), bodies ([`types`]) and
//! the OpenAPI document ([`openapi`]).

pub mod openapi;
pub mod server;
pub mod types;
