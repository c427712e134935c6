//! One listening head fitted: L2-regularised logistic regression over an utterance's dense
//! and hashed features, classes weighted to balance (as scikit-learn's `class_weight =
//! "balanced"`), minimised with argmin's L-BFGS. Starting from a prior head (the default
//! model's), the penalty pulls the weights towards it rather than towards zero, so a site with
//! few examples moves the default only as far as its data says.
//!
//! Deterministic to the bit: one thread, sums in row order, `libm`'s exp and log1p.

use argmin::core::{CostFunction, Error, Executor, Gradient, State as _};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

/// One example: its features and whether it shows the behaviour.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    pub dense: &'a [f32],
    pub sparse: &'a [(u32, f32)],
    pub y: bool,
    /// How much it counts (its source's weight, `hearken train --weight`; 1 by default), on
    /// top of its class's balancing weight.
    pub weight: f64,
}

/// A head's parameters: bias, then the dense weights, then one per hash bucket.
pub(super) type Params = Vec<f64>;

/// What a fit needs besides the rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setting<'a> {
    /// Inverse regularisation strength (scikit-learn's `C`).
    pub c: f64,
    pub dense_len: usize,
    pub buckets: usize,
    /// The weights the penalty pulls towards and the fit starts from (none: zeros).
    pub prior: Option<&'a [f64]>,
    /// L-BFGS iterations at most.
    pub max_iters: u64,
}

struct Problem<'a> {
    rows: &'a [Row<'a>],
    /// Weight of a negative and of a positive example.
    class_weight: [f64; 2],
    setting: Setting<'a>,
}

fn softplus(t: f64) -> f64 {
    if t > 0.0 {
        t + libm::log1p(libm::exp(-t))
    } else {
        libm::log1p(libm::exp(t))
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + libm::exp(-z))
    } else {
        let e = libm::exp(z);
        e / (1.0 + e)
    }
}

impl Problem<'_> {
    fn logit(&self, x: &[f64], r: &Row<'_>) -> f64 {
        let d = self.setting.dense_len;
        let mut z = x[0];
        for (w, v) in x[1..=d].iter().zip(r.dense) {
            z += w * f64::from(*v);
        }
        for &(b, v) in r.sparse {
            z += x[1 + d + b as usize] * f64::from(v);
        }
        z
    }

    fn prior(&self, j: usize) -> f64 {
        self.setting.prior.map_or(0.0, |p| p[j])
    }
}

impl CostFunction for Problem<'_> {
    type Param = Params;
    type Output = f64;

    fn cost(&self, x: &Params) -> Result<f64, Error> {
        let mut loss = 0.0;
        for r in self.rows {
            let z = self.logit(x, r);
            let s = self.class_weight[usize::from(r.y)] * r.weight;
            loss += s * softplus(if r.y { -z } else { z });
        }
        let mut penalty = 0.0;
        for (j, w) in x.iter().enumerate().skip(1) {
            let d = w - self.prior(j);
            penalty += d * d;
        }
        Ok(self.setting.c * loss + 0.5 * penalty)
    }
}

impl Gradient for Problem<'_> {
    type Param = Params;
    type Gradient = Params;

    fn gradient(&self, x: &Params) -> Result<Params, Error> {
        let d = self.setting.dense_len;
        let mut g = vec![0.0; x.len()];
        for r in self.rows {
            let z = self.logit(x, r);
            let s = self.class_weight[usize::from(r.y)] * r.weight;
            let e = self.setting.c * s * (sigmoid(z) - f64::from(u8::from(r.y)));
            g[0] += e;
            for (gj, v) in g[1..=d].iter_mut().zip(r.dense) {
                *gj += e * f64::from(*v);
            }
            for &(b, v) in r.sparse {
                g[1 + d + b as usize] += e * f64::from(v);
            }
        }
        for (j, gj) in g.iter_mut().enumerate().skip(1) {
            *gj += x[j] - self.prior(j);
        }
        Ok(g)
    }
}

/// Fits a head on `rows` (both classes present).
pub(super) fn fit(rows: &[Row<'_>], setting: Setting<'_>) -> Result<Params, String> {
    let n = rows.len() as f64;
    let positives = rows.iter().filter(|r| r.y).count() as f64;
    let negatives = n - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Err("both classes are needed".into());
    }
    let len = 1 + setting.dense_len + setting.buckets;
    let start = setting
        .prior
        .map_or_else(|| vec![0.0; len], <[f64]>::to_vec);
    if start.len() != len {
        return Err("the prior head has the wrong shape".into());
    }
    let problem = Problem {
        rows,
        class_weight: [n / (2.0 * negatives), n / (2.0 * positives)],
        setting,
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-5)
        .and_then(|s| s.with_tolerance_cost(1e-10))
        .map_err(|e| e.to_string())?;
    let result = Executor::new(problem, solver)
        .configure(|state| state.param(start).max_iters(setting.max_iters))
        .run()
        .map_err(|e| format!("the fit did not converge: {e}"))?;
    result
        .state()
        .get_best_param()
        .cloned()
        .ok_or_else(|| "the fit gave no parameters".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(prior: Option<&[f64]>) -> Setting<'_> {
        Setting {
            c: 1.0,
            dense_len: 1,
            buckets: 4,
            prior,
            max_iters: 200,
        }
    }

    /// A feature that marks the positives is learned; a bucket no row has stays at its prior.
    #[test]
    fn a_separating_feature_is_learned_and_unseen_buckets_keep_the_prior() {
        let dense = [[1.0f32], [0.0]];
        let hit = [(2u32, 1.0f32)];
        let rows: Vec<Row<'_>> = (0..40)
            .map(|i| Row {
                dense: &dense[i % 2],
                sparse: if i % 2 == 0 { &hit } else { &[] },
                y: i % 2 == 0,
                weight: 1.0,
            })
            .collect();
        let w = fit(&rows, setting(None)).unwrap();
        assert!(w[1] > 0.5 && w[1 + 1 + 2] > 0.5, "{w:?}");
        assert_eq!(w[1 + 1 + 3], 0.0);
        let prior = [0.0, 0.0, 0.0, 0.0, 0.0, 0.7];
        let w2 = fit(&rows, setting(Some(&prior))).unwrap();
        assert!(
            (w2[5] - 0.7).abs() < 1e-9,
            "an unseen bucket keeps its prior: {}",
            w2[5]
        );
        assert_eq!(w, fit(&rows, setting(None)).unwrap(), "the same bits twice");
    }
}
