//! The listening model: a static token-embedding table distilled from a sentence encoder, and
//! small linear heads over features of an utterance (see `features.rs`). Read from a
//! safetensors file: the one built by `models/build.py` is embedded in the binary, and
//! `--model FILE` loads another.
//!
//! Every number is computed with IEEE additions, multiplications, divisions and square roots in
//! a fixed order, and the logistic function comes from `libm` (pure Rust), so a model gives the
//! same bits for the same input on every machine.

use std::collections::HashMap;
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};

/// The model built from `models/`, embedded.
static EMBEDDED: &[u8] = include_bytes!("../../../models/listening.safetensors");
/// The format name a model file must declare in its metadata.
pub(crate) const FORMAT: &str = "hearken-listening-1";
/// Sanity caps for a model file (the embedded one is far below them).
const MAX_VOCAB: usize = 200_000;
const MAX_DIM: usize = 1024;
const MAX_BUCKETS: usize = 1 << 22;

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("listening model: {0}")]
pub(crate) struct ModelError(String);

fn bad(what: impl Into<String>) -> ModelError {
    ModelError(what.into())
}

/// One head: a logistic regression over the dense and hashed features.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// Behaviour name (`open_question`, `closed_question`, `reflection`, ...), with `.asr` for
    /// the head of unpunctuated text.
    pub name: String,
    pub bias: f32,
    pub dense: Vec<f32>,
    pub sparse: Vec<f32>,
    /// Decision threshold on the logit (chosen by cross-validation when the head was built).
    pub threshold: f32,
}

impl Head {
    /// The head's logit for a feature vector.
    pub(crate) fn logit(&self, dense: &[f32], sparse: &[(u32, f32)]) -> f32 {
        let mut z = self.bias;
        for (w, x) in self.dense.iter().zip(dense) {
            z += w * x;
        }
        for &(i, x) in sparse {
            z += self.sparse[i as usize] * x;
        }
        z
    }
}

/// The logistic function, the same bits everywhere.
pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-z))
}

/// A loaded model.
#[derive(Debug)]
pub(crate) struct Model {
    vocab: HashMap<Box<str>, u32>,
    dim: usize,
    /// Token vectors, int8 per component, one scale per token (1.9 MB for the embedded model;
    /// a component's value is `i8 × scale`, computed the same way on every use).
    table: Vec<i8>,
    scales: Vec<f32>,
    /// Hash buckets of the lexical features.
    pub buckets: usize,
    heads: Vec<Head>,
}

impl Model {
    /// Reads a model file's bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let get = |key: &str| {
            meta.get(key)
                .ok_or_else(|| bad(format!("metadata `{key}` missing")))
        };
        if get("format")? != FORMAT {
            return Err(bad(format!("metadata `format` is not {FORMAT}")));
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let tokens: Vec<&str> = get("vocab")?.split('\n').collect();
        if tokens.len() > MAX_VOCAB {
            return Err(bad("vocabulary too large"));
        }
        let q = st.tensor("embeddings").map_err(|e| bad(e.to_string()))?;
        let scales = f32s(&st, "scales")?;
        let [rows, dim] = q.shape() else {
            return Err(bad("`embeddings` must be two-dimensional"));
        };
        let (rows, dim) = (*rows, *dim);
        if q.dtype() != Dtype::I8
            || rows != tokens.len()
            || scales.len() != rows
            || dim > MAX_DIM
            || dim == 0
        {
            return Err(bad(
                "`embeddings` must be i8 [vocab, dim] with one scale per row",
            ));
        }
        let table: Vec<i8> = q.data().iter().map(|&b| b as i8).collect();
        let vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (Box::<str>::from(*t), i as u32))
            .collect();
        let buckets: usize = get("buckets")?
            .parse()
            .map_err(|_| bad("`buckets` is not a number"))?;
        if !(1..=MAX_BUCKETS).contains(&buckets) {
            return Err(bad("`buckets` out of range"));
        }
        let mut heads = Vec::new();
        let names = get("heads")?;
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let dense = f32s(&st, &format!("head.{name}.dense"))?;
            let sparse = f32s(&st, &format!("head.{name}.sparse"))?;
            let bias = f32s(&st, &format!("head.{name}.bias"))?;
            let threshold: f32 = get(&format!("threshold.{name}"))?
                .parse()
                .map_err(|_| bad(format!("`threshold.{name}` is not a number")))?;
            if dense.len() != super::features::dense_len(dim)
                || sparse.len() != buckets
                || bias.len() != 1
            {
                return Err(bad(format!("head `{name}` has the wrong shape")));
            }
            heads.push(Head {
                name: name.to_string(),
                bias: bias[0],
                dense,
                sparse,
                threshold,
            });
        }
        Ok(Model {
            vocab,
            dim,
            table,
            scales,
            buckets,
            heads,
        })
    }

    /// Embedding width.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// The heads, in the file's order.
    pub(crate) fn heads(&self) -> &[Head] {
        &self.heads
    }

    /// The model file of this token table with `heads` (in their order) and `version`: a
    /// safetensors file with its header in sorted order (the crate's writer orders the
    /// metadata by a hash map), so the same model gives the same bytes on every machine, as
    /// `models/build.py`'s writer does.
    pub(crate) fn to_bytes(&self, heads: &[Head], version: &str) -> Vec<u8> {
        use std::collections::BTreeMap;
        let mut tokens = vec![""; self.vocab.len()];
        for (t, &id) in &self.vocab {
            tokens[id as usize] = t;
        }
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("vocab".to_string(), tokens.join("\n"));
        meta.insert("buckets".to_string(), self.buckets.to_string());
        let names: Vec<&str> = heads.iter().map(|h| h.name.as_str()).collect();
        meta.insert("heads".to_string(), names.join(","));
        meta.insert("version".to_string(), version.to_string());
        let mut tensors: BTreeMap<String, (&str, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        tensors.insert(
            "embeddings".into(),
            (
                "I8",
                vec![tokens.len(), self.dim],
                self.table.iter().map(|&b| b as u8).collect(),
            ),
        );
        tensors.insert(
            "scales".into(),
            ("F32", vec![tokens.len()], f32s(&self.scales)),
        );
        for h in heads {
            let n = &h.name;
            tensors.insert(
                format!("head.{n}.dense"),
                ("F32", vec![h.dense.len()], f32s(&h.dense)),
            );
            tensors.insert(
                format!("head.{n}.sparse"),
                ("F32", vec![h.sparse.len()], f32s(&h.sparse)),
            );
            tensors.insert(format!("head.{n}.bias"), ("F32", vec![1], f32s(&[h.bias])));
            meta.insert(
                format!("threshold.{n}"),
                format!("{:?}", f64::from(h.threshold)),
            );
        }
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!(meta));
        let mut offset = 0;
        for (name, (dtype, shape, data)) in &tensors {
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + data.len()]}),
            );
            offset += data.len();
        }
        let mut text = serde_json::to_vec(&header).unwrap_or_default();
        text.resize(text.len().div_ceil(8) * 8, b' ');
        let mut out = Vec::with_capacity(8 + text.len() + offset);
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(&text);
        for (_, (_, _, data)) in tensors {
            out.extend_from_slice(&data);
        }
        out
    }

    /// The head for a behaviour, if the model has one; for unpunctuated text (`asr`), its
    /// `<name>.asr` head when it has one.
    pub(crate) fn head_for(&self, name: &str, asr: bool) -> Option<&Head> {
        let asr_head = || {
            self.heads
                .iter()
                .find(|h| h.name.strip_suffix(".asr") == Some(name))
        };
        asr.then(asr_head)
            .flatten()
            .or_else(|| self.heads.iter().find(|h| h.name == name))
    }

    /// Mean of the token vectors of `text`, L2-normalised, into `out` (zeros when no token is
    /// known). Tokens: lower-cased words split at punctuation, then greedy longest-match word
    /// pieces (`##` continues a word) as in BERT's tokenizer; unknown words are skipped.
    pub(crate) fn embed(&self, text: &str, out: &mut [f32]) {
        out.fill(0.0);
        let mut n = 0u32;
        let mut word = String::new();
        let mut piece = String::new();
        let mut flush = |word: &mut String, out: &mut [f32], n: &mut u32| {
            if word.is_empty() {
                return;
            }
            self.pieces(word, &mut piece, |id| {
                let row = &self.table[id as usize * self.dim..(id as usize + 1) * self.dim];
                let scale = self.scales[id as usize];
                for (o, v) in out.iter_mut().zip(row) {
                    *o += f32::from(*v) * scale;
                }
                *n += 1;
            });
            word.clear();
        };
        for c in text.chars().flat_map(char::to_lowercase) {
            let c = if c == '’' { '\'' } else { c };
            if c.is_whitespace() {
                flush(&mut word, out, &mut n);
            } else if c.is_alphanumeric() {
                word.push(c);
            } else {
                flush(&mut word, out, &mut n);
                word.push(c);
                flush(&mut word, out, &mut n);
            }
        }
        flush(&mut word, out, &mut n);
        if n > 0 {
            let inv = 1.0 / n as f32;
            out.iter_mut().for_each(|o| *o *= inv);
            let norm = out.iter().map(|o| o * o).sum::<f32>().sqrt();
            if norm > 0.0 {
                out.iter_mut().for_each(|o| *o /= norm);
            }
        }
    }

    /// Calls `each` with the word-piece ids of one word; none when a piece is unknown.
    fn pieces(&self, word: &str, buf: &mut String, mut each: impl FnMut(u32)) {
        if let Some(&id) = self.vocab.get(word) {
            return each(id);
        }
        if word.len() > 100 {
            return;
        }
        let mut ids = [0u32; 32];
        let mut count = 0;
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while end > start {
                if word.is_char_boundary(end) {
                    buf.clear();
                    if start > 0 {
                        buf.push_str("##");
                    }
                    buf.push_str(&word[start..end]);
                    if let Some(&id) = self.vocab.get(buf.as_str()) {
                        found = Some(id);
                        break;
                    }
                }
                end -= 1;
            }
            match found {
                Some(id) if count < ids.len() => {
                    ids[count] = id;
                    count += 1;
                    start = end;
                }
                _ => return,
            }
        }
        ids[..count].iter().for_each(|&id| each(id));
    }
}

fn f32s(st: &SafeTensors<'_>, name: &str) -> Result<Vec<f32>, ModelError> {
    let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
    if t.dtype() != Dtype::F32 {
        return Err(bad(format!("`{name}` must be f32")));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A listening model as the rest of the crate holds it: shared by the profiles of the rubrics
/// compiled with it (it travels with them, so nothing in the engine is process-global).
#[derive(Debug, Clone)]
pub struct ListeningModel(pub(crate) Arc<Model>);

impl ListeningModel {
    /// The model built from `models/`, embedded in the binary.
    pub fn embedded() -> Result<ListeningModel, String> {
        Self::from_bytes(EMBEDDED)
    }

    /// A model from a safetensors file's bytes (`--model FILE`).
    pub fn from_bytes(bytes: &[u8]) -> Result<ListeningModel, String> {
        Model::from_bytes(bytes)
            .map(|m| ListeningModel(Arc::new(m)))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> Model {
        Model::from_bytes(EMBEDDED).expect("the embedded model loads")
    }

    #[test]
    fn the_embedded_model_loads_with_its_heads() {
        let m = embedded();
        assert_eq!(m.dim(), 64);
        for name in ["open_question", "closed_question", "reflection"] {
            assert!(m.head_for(name, false).is_some(), "{name}");
            assert!(
                m.head_for(name, true).is_some(),
                "{name} for unpunctuated text"
            );
        }
        assert!(m.head_for("empathy", false).is_none());
    }

    #[test]
    fn embeddings_are_unit_length_deterministic_and_meaningful() {
        let (a, b) = (embedded(), embedded());
        let mut x = vec![0.0; 64];
        let mut y = vec![0.0; 64];
        a.embed("My router keeps disconnecting every evening.", &mut x);
        b.embed("My router keeps disconnecting every evening.", &mut y);
        assert_eq!(
            x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "same bits from two loads"
        );
        let norm: f32 = x.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        let cos = |p: &str, q: &str| {
            let (mut u, mut v) = (vec![0.0; 64], vec![0.0; 64]);
            a.embed(p, &mut u);
            a.embed(q, &mut v);
            u.iter().zip(&v).map(|(s, t)| s * t).sum::<f32>()
        };
        let near = cos(
            "the internet connection keeps dropping",
            "my wifi disconnects all the time",
        );
        let far = cos(
            "the internet connection keeps dropping",
            "I'd like to book a flight to Madrid",
        );
        assert!(near > far, "{near} vs {far}");
        // Words the vocabulary lacks are read in pieces; text with no known piece is zeros.
        a.embed("unpluggable", &mut x);
        assert!(x.iter().any(|v| *v != 0.0));
        a.embed("   ", &mut x);
        assert!(x.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn a_broken_model_file_is_an_error_not_a_panic() {
        assert!(Model::from_bytes(b"").is_err());
        assert!(Model::from_bytes(&EMBEDDED[..EMBEDDED.len() / 2]).is_err());
        let mut wrong = EMBEDDED.to_vec();
        let at = wrong
            .windows(19)
            .position(|w| w == b"hearken-listening-1")
            .unwrap();
        wrong[at + 18] = b'9';
        let e = Model::from_bytes(&wrong).unwrap_err();
        assert!(e.to_string().contains("format"), "{e}");
    }

    /// A model written back with its own heads loads with the same heads and the same token
    /// table, and writing is deterministic.
    #[test]
    fn a_model_written_back_loads_the_same() {
        let m = embedded();
        let bytes = m.to_bytes(m.heads(), "1");
        assert_eq!(bytes, m.to_bytes(m.heads(), "1"));
        let back = Model::from_bytes(&bytes).expect("loads");
        assert_eq!(back.dim(), m.dim());
        assert_eq!(back.table, m.table);
        assert_eq!(back.scales, m.scales);
        assert_eq!(back.vocab, m.vocab);
        assert_eq!(back.heads().len(), m.heads().len());
        for (a, b) in back.heads().iter().zip(m.heads()) {
            assert_eq!(
                (&a.name, a.bias, &a.dense, &a.sparse, a.threshold),
                (&b.name, b.bias, &b.dense, &b.sparse, b.threshold)
            );
        }
    }

    #[test]
    fn the_logistic_function_is_exact_at_known_points() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(20.0) > 0.999_999 && sigmoid(-20.0) < 1e-6);
    }
}
