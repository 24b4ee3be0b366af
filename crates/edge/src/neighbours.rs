//! Nearest labelled e-mails: a flat scan everywhere, hnsw_rs natively for
//! very large bundles.

use mailsort_shared::bundle::Exemplars;

/// Finds the exemplars most similar (cosine) to a unit vector.
pub trait NeighbourIndex: Send + Sync {
    /// Up to `k` hits as (exemplar index, cosine similarity), best first.
    fn search(&self, query: &[f32], k: usize) -> Vec<(usize, f32)>;
}

/// Below this many exemplars the native edge (CLI, backend) scans them all
/// with [`FlatIndex`], as the browser and the Worker always do, so a bundle's
/// exemplars are searched exactly and the same way everywhere; the scan costs
/// about 0.6 ms per e-mail at 10,000 exemplars, where building the hnsw graph
/// takes 7-13 s at every load (`mailsort bench-exemplars`).
pub const HNSW_MIN_EXEMPLARS: usize = 50_000;

/// How a bundle's exemplars are searched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IndexChoice {
    /// The flat scan below [`HNSW_MIN_EXEMPLARS`], hnsw_rs from there on
    /// (where hnsw_rs is built in; the flat scan elsewhere).
    #[default]
    Auto,
    /// Always the exact flat scan.
    Flat,
    /// Always hnsw_rs (native builds only).
    Hnsw,
}

impl std::str::FromStr for IndexChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "flat" => Ok(Self::Flat),
            "hnsw" => Ok(Self::Hnsw),
            _ => Err(format!("unknown exemplar index {s:?}: auto, flat or hnsw")),
        }
    }
}

/// The index that searches `ex` under `choice`.
pub fn index_for(ex: &Exemplars, choice: IndexChoice) -> Box<dyn NeighbourIndex> {
    #[cfg(feature = "hnsw")]
    {
        let hnsw = match choice {
            IndexChoice::Auto => ex.len() >= HNSW_MIN_EXEMPLARS,
            IndexChoice::Flat => false,
            IndexChoice::Hnsw => true,
        };
        if hnsw {
            return Box::new(HnswIndex::new(ex));
        }
    }
    #[cfg(not(feature = "hnsw"))]
    let _ = choice;
    Box::new(FlatIndex::new(ex))
}

/// Exact search by scanning every vector.
pub struct FlatIndex {
    dim: usize,
    vectors: Vec<f32>,
}

impl FlatIndex {
    /// Dequantises the bundle's exemplars once.
    pub fn new(ex: &Exemplars) -> Self {
        let mut vectors = Vec::with_capacity(ex.len() * ex.dim);
        for i in 0..ex.len() {
            vectors.extend(ex.vector(i));
        }
        Self {
            dim: ex.dim,
            vectors,
        }
    }
}

/// Dot product summed in eight interleaved lanes. Float addition does not
/// reassociate, so a plain running sum stays scalar; eight independent sums
/// let the compiler use SIMD (about 3x faster on the default x86-64 target,
/// `mailsort bench-exemplars`), and the fixed order gives the same bits
/// natively and in WebAssembly.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

impl NeighbourIndex for FlatIndex {
    fn search(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut hits: Vec<(usize, f32)> = self
            .vectors
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, v)| (i, dot(v, query)))
            .collect();
        let k = k.min(hits.len());
        if k == 0 {
            return Vec::new();
        }
        hits.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        hits.truncate(k);
        hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        hits
    }
}

#[cfg(feature = "hnsw")]
pub use hnsw::HnswIndex;

#[cfg(feature = "hnsw")]
mod hnsw {
    use hnsw_rs::prelude::{DistCosine, Hnsw};
    use mailsort_shared::bundle::Exemplars;

    use super::NeighbourIndex;

    /// Approximate search with hnsw_rs (native only: it does not build for
    /// wasm32). Its cosine distance clamps rounding below zero (its dot distance asserts instead).
    pub struct HnswIndex {
        hnsw: Hnsw<'static, f32, DistCosine>,
        ef_search: usize,
    }

    impl HnswIndex {
        /// Builds the graph over the bundle's exemplars. Insertion is serial:
        /// hnsw_rs seeds its level draws, so the same bundle always gives the
        /// same graph, and an e-mail the same label on every run and in every
        /// process (parallel insertion interleaves the draws by thread timing,
        /// which flipped near-tie e-mails between runs).
        pub fn new(ex: &Exemplars) -> Self {
            let n = ex.len().max(1);
            let layers = 16.min((n as f32).ln().ceil().max(1.0) as usize);
            let hnsw = Hnsw::<f32, DistCosine>::new(16, n, layers, 200, DistCosine {});
            for i in 0..ex.len() {
                hnsw.insert_slice((&renormalise(ex.vector(i)), i));
            }
            Self {
                hnsw,
                ef_search: 64,
            }
        }
    }

    /// int8 storage leaves vectors a hair off unit length; DistCosine wants them exact.
    fn renormalise(mut v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= n);
        v
    }

    impl NeighbourIndex for HnswIndex {
        fn search(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
            self.hnsw
                .search(query, k, self.ef_search.max(k))
                .into_iter()
                .map(|n| (n.d_id, 1.0 - n.distance))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` pseudo-random distinct unit vectors of width 16 (an LCG: no
    /// test dependency, the same vectors on every run).
    fn random_units(seed: u64, n: usize) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..16).map(|_| next()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    #[test]
    fn lane_dot_matches_the_plain_sum_with_a_ragged_tail() {
        for width in [3, 8, 19, 384] {
            let a: Vec<f32> = (0..width).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..width).map(|i| (i as f32 * 0.91).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "width {width}");
        }
    }

    #[test]
    fn flat_and_hnsw_find_the_same_nearest() {
        let vectors = random_units(12345, 500);
        let ex = Exemplars::from_vectors(16, &vectors, vec![0; 500], 5, 0.5);
        let flat = FlatIndex::new(&ex);
        let q = random_units(54321, 1).remove(0);
        let a = flat.search(&q, 5);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0].1 >= w[1].1));
        let exact: f32 = vectors[a[0].0].iter().zip(&q).map(|(x, y)| x * y).sum();
        assert!(
            (exact - a[0].1).abs() < 0.02,
            "int8 storage keeps similarities close"
        );
        #[cfg(feature = "hnsw")]
        {
            let h = HnswIndex::new(&ex);
            let b = h.search(&q, 5);
            let overlap = b
                .iter()
                .filter(|(i, _)| a.iter().any(|(j, _)| i == j))
                .count();
            assert!(overlap >= 4, "flat {a:?} hnsw {b:?}");
            assert!((a[0].1 - b[0].1).abs() < 1e-3);
        }
    }

    #[cfg(feature = "hnsw")]
    #[test]
    fn hnsw_builds_the_same_graph_every_time() {
        let vectors = random_units(777, 3000);
        let queries = random_units(778, 300);
        let ex = Exemplars::from_vectors(16, &vectors, vec![0; 3000], 5, 0.5);
        let answers = |h: &HnswIndex| -> Vec<Vec<usize>> {
            queries
                .iter()
                .map(|q| h.search(q, 10).into_iter().map(|(i, _)| i).collect())
                .collect()
        };
        let first = answers(&HnswIndex::new(&ex));
        for _ in 0..3 {
            assert_eq!(answers(&HnswIndex::new(&ex)), first);
        }
    }
}
