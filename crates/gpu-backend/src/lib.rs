//! The reranking backend; see issue 3.
