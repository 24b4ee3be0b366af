//! Sentence encoders on ONNX Runtime, native only: [`encoder`] runs any
//! encoder file whose graph pools and normalises itself (the edge's
//! `onnxruntime-int8` engine, `mailsort bench`'s peer), and
//! [`second_opinion`] loads the backend's second-opinion encoder from its
//! prepared folder. The CLI and the backend both embed through this crate,
//! so a head trained by one is read the same way by the other.

pub mod encoder;
pub mod second_opinion;

pub use encoder::{OrtEncoder, OrtError, init};
