//! Joslim (Chin et al., ECML-PKDD 2021): the widths a slimmable network trains are chosen
//! toward the accuracy-vs-cost Pareto front instead of uniformly.
//!
//! A pool of configurations (one multiplier per search dimension) feeds the sandwich step:
//! each step trains the full width, the smallest one and `random` members of the pool.
//! The pool starts with `prior` uniform draws. Every `tau` steps, each member's loss is
//! measured again on one validation batch with the current weights, two Gaussian processes
//! (Matern 5/2) are fitted to loss and cost over the multipliers, and `per_update` new
//! members are proposed: each draws a trade-off λ, takes the optimistic bound of both
//! predictions (mean − β·sd, both objectives are minimised), scalarises them with the
//! augmented Tchebyshev function and minimises that over `[min_width, 1]^dims`. New
//! members push the oldest out once the pool holds `pool` of them.
//!
//! The GP is egobox-gp's (maximum-likelihood hyperparameters, multistart COBYLA), and the
//! acquisition is minimised by the same crate's COBYLA driver from several starts.
//! Everything random is a function of the seed and a counter, so a resumed run repeats the
//! original exactly.

use super::OptionError;
use egobox_gp::basin_optimizer::{self, Algorithm, Settings};
use egobox_gp::correlation_models::Matern52Corr;
use egobox_gp::mean_models::ConstantMean;
use egobox_gp::GaussianProcess;
use linfa::prelude::Fit;
use linfa::Dataset;
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cost;
use crate::ir::Network;

/// The cost the second GP models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    Macs,
    Params,
    /// Peak inference memory of one image, in bytes ([`cost::peak_memory`]).
    Memory,
    /// Measured forward time of one image, in milliseconds (measured once, when a
    /// configuration joins the pool, and kept in the state).
    Latency,
}

impl Objective {
    /// The cost of `dims` where it follows from the network alone (not latency).
    pub fn static_cost(self, net: &Network, dims: &[u32]) -> Option<f64> {
        match self {
            Objective::Macs => Some(cost::cost(net, dims).0.macs as f64),
            Objective::Params => Some(cost::cost(net, dims).0.params as f64),
            Objective::Memory => Some(cost::peak_memory(net, dims) as f64),
            Objective::Latency => None,
        }
    }
}

/// Joslim's settings (stored with the run).
#[derive(Clone, Debug, PartialEq)]
pub struct JoslimOptions {
    /// Uniform draws the pool starts with.
    pub prior: usize,
    /// Steps between GP updates.
    pub tau: usize,
    /// Configurations proposed at each update.
    pub per_update: usize,
    /// The most configurations the pool holds (the oldest leave first).
    pub pool: usize,
    pub objective: Objective,
    /// Width of the confidence bound, in standard deviations.
    pub beta: f64,
}

impl JoslimOptions {
    /// Every count at least 1, no more proposals per update than the pool keeps, `beta` a
    /// non-negative number: for the flags and for the options stored in a run alike.
    pub fn validate(&self) -> Result<(), OptionError> {
        let error = |field, problem| Err(OptionError { field, problem });
        for (field, v) in
            [("prior", self.prior), ("tau", self.tau), ("per_update", self.per_update), ("pool", self.pool)]
        {
            if v == 0 {
                return error(field, "must be at least 1".into());
            }
        }
        if self.per_update > self.pool {
            let problem = format!("must be at most the pool's {} configurations, got {}", self.pool, self.per_update);
            return error("per_update", problem);
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return error("beta", format!("must be a non-negative number, got {}", self.beta));
        }
        Ok(())
    }
}

impl Default for JoslimOptions {
    fn default() -> Self {
        JoslimOptions { prior: 20, tau: 50, per_update: 2, pool: 20, objective: Objective::Macs, beta: 1.0 }
    }
}

/// A configuration of the pool with its latest measurements.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// One multiplier per search dimension.
    pub wm: Vec<f64>,
    pub cost: f64,
    /// Validation loss at the latest update (none before the first).
    pub loss: Option<f64>,
    /// The update that proposed it (0: the prior).
    pub born: usize,
}

/// Where Joslim stands (part of the run's checkpoint).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JoslimState {
    pub pool: Vec<Member>,
    /// GP updates done; update `u` runs before step `u·tau`.
    pub updates: usize,
}

/// Why an update could not propose configurations.
#[derive(Debug, thiserror::Error)]
pub enum JoslimError {
    #[error("fitting the Gaussian process failed: {0}")]
    Fit(String),
    #[error("the Gaussian process cannot predict: {0}")]
    Predict(String),
}

/// Salts that keep the counters' random streams apart.
const PRIOR: u64 = 0x6a6f_736c_696d_0001;
const UPDATE: u64 = 0x6a6f_736c_696d_0002;
const PICK: u64 = 0x6a6f_736c_696d_0003;

fn rng(seed: u64, salt: u64, counter: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ salt.wrapping_mul(counter.wrapping_add(1)))
}

/// `dims` multipliers drawn uniformly from `[lo, 1]`.
fn uniform_draw(rng: &mut StdRng, dims: usize, lo: f64) -> Vec<f64> {
    (0..dims).map(|_| rng.random_range(lo..=1.0)).collect()
}

impl JoslimState {
    /// The prior pool: `opts.prior` uniform draws, with `cost` of each.
    pub fn start<E>(
        opts: &JoslimOptions,
        dims: usize,
        min_width: f64,
        seed: u64,
        mut cost: impl FnMut(&[f64]) -> Result<f64, E>,
    ) -> Result<JoslimState, E> {
        let mut r = rng(seed, PRIOR, 0);
        let mut pool = Vec::with_capacity(opts.prior);
        for _ in 0..opts.prior {
            let wm = uniform_draw(&mut r, dims, min_width);
            pool.push(Member { cost: cost(&wm)?, wm, loss: None, born: 0 });
        }
        Ok(JoslimState { pool, updates: 0 })
    }

    /// Why a stored state cannot continue a run of a network with `dims` search
    /// dimensions trained from `min_width` (an edited checkpoint), if it cannot.
    pub fn check(&self, dims: usize, min_width: f64) -> Result<(), String> {
        if self.pool.is_empty() {
            return Err("joslim.pool is empty".into());
        }
        for (i, m) in self.pool.iter().enumerate() {
            if m.wm.len() != dims {
                return Err(format!(
                    "joslim.pool[{i}].wm has {} multipliers, the network has {dims} dimensions",
                    m.wm.len()
                ));
            }
            if let Some(w) = m.wm.iter().find(|w| !(min_width - 1e-12..=1.0).contains(*w)) {
                return Err(format!("joslim.pool[{i}].wm holds {w}, outside [{min_width}, 1]"));
            }
            if !m.cost.is_finite() || m.loss.is_some_and(|l| !l.is_finite()) {
                return Err(format!("joslim.pool[{i}] has a cost or loss that is not a number"));
            }
        }
        Ok(())
    }

    /// Whether an update is due before `step`.
    pub fn due(&self, opts: &JoslimOptions, step: usize) -> bool {
        (self.updates + 1) * opts.tau <= step
    }

    /// `k` members for step `step`, drawn with replacement.
    pub fn sample(&self, seed: u64, step: usize, k: usize) -> Vec<Vec<f64>> {
        let mut r = rng(seed, PICK, step as u64);
        (0..k).map(|_| self.pool[r.random_range(0..self.pool.len())].wm.clone()).collect()
    }

    /// One update: `losses` are the members' losses measured with the current weights (in
    /// pool order); fits both GPs, proposes `per_update` configurations (costed by `cost`)
    /// and adds them, the oldest leaving when the pool is full.
    pub fn update<E: From<JoslimError>>(
        &mut self,
        opts: &JoslimOptions,
        losses: &[f64],
        min_width: f64,
        seed: u64,
        mut cost: impl FnMut(&[f64]) -> Result<f64, E>,
    ) -> Result<(), E> {
        for (m, &l) in self.pool.iter_mut().zip(losses) {
            m.loss = Some(l);
        }
        self.updates += 1;
        let xs: Vec<Vec<f64>> = self.pool.iter().map(|m| m.wm.clone()).collect();
        let costs: Vec<f64> = self.pool.iter().map(|m| m.cost).collect();
        let mut r = rng(seed, UPDATE, self.updates as u64);
        // A space of one point (min width 1, or no search dimension) leaves nothing to fit.
        let distinct = xs.iter().enumerate().filter(|(i, x)| !xs[..*i].contains(x)).count();
        let models = match distinct {
            0 | 1 => None,
            _ => Some([Surrogate::fit(&xs, losses)?, Surrogate::fit(&xs, &costs)?]),
        };
        let scale = [Range::of(losses), Range::of(&costs)];
        for _ in 0..opts.per_update {
            let lambda = r.random_range(0.0..=1.0);
            let wm = match &models {
                Some([l, c]) => {
                    Acquisition { models: [l, c], scale, lambda, beta: opts.beta }.minimise(&xs, min_width, &mut r)?
                }
                None => uniform_draw(&mut r, xs.first().map_or(0, Vec::len), min_width),
            };
            let c = cost(&wm)?;
            self.pool.push(Member { wm, cost: c, loss: None, born: self.updates });
        }
        let excess = self.pool.len().saturating_sub(opts.pool.max(1));
        self.pool.drain(..excess);
        Ok(())
    }
}

/// A Gaussian process over the multipliers: constant mean, Matern 5/2 correlation with
/// one length scale per dimension, fitted by maximum likelihood.
pub struct Surrogate {
    gp: GaussianProcess<f64, ConstantMean, Matern52Corr>,
    dims: usize,
}

impl Surrogate {
    /// Fits `ys` at `xs` (rows of equal length). Repeated rows are averaged first (the GP
    /// interpolates, so two values at one point would make it singular).
    pub fn fit(xs: &[Vec<f64>], ys: &[f64]) -> Result<Surrogate, JoslimError> {
        let mut rows: Vec<(Vec<f64>, f64, usize)> = Vec::new();
        for (x, &y) in xs.iter().zip(ys) {
            match rows.iter_mut().find(|(r, _, _)| r == x) {
                Some((_, sum, n)) => {
                    *sum += y;
                    *n += 1;
                }
                None => rows.push((x.clone(), y, 1)),
            }
        }
        let dims = xs.first().map_or(0, Vec::len);
        if rows.len() < 2 || dims == 0 {
            return Err(JoslimError::Fit(format!("{} distinct points in {dims} dimensions", rows.len())));
        }
        let flat: Vec<f64> = rows.iter().flat_map(|(x, _, _)| x.iter().copied()).collect();
        let x = Array2::from_shape_vec((rows.len(), dims), flat).map_err(|e| JoslimError::Fit(e.to_string()))?;
        let y: Array1<f64> = rows.iter().map(|(_, s, n)| s / *n as f64).collect();
        let gp = GaussianProcess::<f64, ConstantMean, Matern52Corr>::params(ConstantMean(), Matern52Corr())
            .nugget(1e-6)
            .fit(&Dataset::new(x, y))
            .map_err(|e| JoslimError::Fit(e.to_string()))?;
        Ok(Surrogate { gp, dims })
    }

    /// Mean and standard deviation at `x`.
    pub fn predict(&self, x: &[f64]) -> Result<(f64, f64), JoslimError> {
        let x = Array2::from_shape_vec((1, self.dims), x.to_vec()).map_err(|e| JoslimError::Predict(e.to_string()))?;
        let (m, v) = self.gp.predict_valvar(&x).map_err(|e| JoslimError::Predict(e.to_string()))?;
        Ok((m[0], v[0].max(0.0).sqrt()))
    }
}

/// The observed range of an objective, to put both on one scale.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    lo: f64,
    span: f64,
}

impl Range {
    pub fn of(v: &[f64]) -> Range {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = hi - lo;
        Range { lo, span: if span > 0.0 && span.is_finite() { span } else { 1.0 } }
    }
    fn scale(self, v: f64) -> f64 {
        (v - self.lo) / self.span
    }
}

/// Weight of the sum in the augmented Tchebyshev function (it keeps weakly dominated
/// points from tying with the ones that dominate them).
const RHO: f64 = 0.05;

/// The scalarised acquisition of one proposal: loss and cost, each as its optimistic bound
/// on the observed scale, weighted by λ and 1 − λ.
pub struct Acquisition<'a> {
    pub models: [&'a Surrogate; 2],
    pub scale: [Range; 2],
    /// The weight of the loss; the cost gets 1 − λ.
    pub lambda: f64,
    pub beta: f64,
}

/// Random starts of the acquisition search, besides the pool's best point.
const STARTS: usize = 6;

impl Acquisition<'_> {
    /// The augmented Tchebyshev value at `x` (smaller is better).
    pub fn value(&self, x: &[f64]) -> Result<f64, JoslimError> {
        let weights = [self.lambda, 1.0 - self.lambda];
        let mut terms = [0.0; 2];
        for (i, t) in terms.iter_mut().enumerate() {
            let (mean, sd) = self.models[i].predict(x)?;
            *t = weights[i] * self.scale[i].scale(mean - self.beta * sd);
        }
        Ok(terms[0].max(terms[1]) + RHO * (terms[0] + terms[1]))
    }

    /// The minimiser over `[lo, 1]^dims`: COBYLA from the best of `seen` and from random
    /// starts; the best end point wins.
    pub fn minimise(&self, seen: &[Vec<f64>], lo: f64, rng: &mut StdRng) -> Result<Vec<f64>, JoslimError> {
        let dims = self.models[0].dims;
        let mut starts: Vec<Vec<f64>> = (0..STARTS).map(|_| uniform_draw(rng, dims, lo)).collect();
        let mut best_seen: Option<(f64, &Vec<f64>)> = None;
        for x in seen {
            let v = self.value(x)?;
            if best_seen.is_none_or(|(b, _)| v < b) {
                best_seen = Some((v, x));
            }
        }
        if let Some((_, x)) = best_seen {
            starts.push(x.clone());
        }
        let bounds = vec![(lo, 1.0); dims];
        let failed = std::cell::RefCell::new(None);
        let call = |x: &[f64], _: Option<&mut [f64]>| match self.value(x) {
            Ok(v) => v,
            Err(e) => {
                failed.borrow_mut().get_or_insert(e);
                f64::INFINITY
            }
        };
        let mut best: Option<(f64, Vec<f64>)> = None;
        for x0 in &starts {
            let settings = Settings {
                xinit: x0,
                bounds: &bounds,
                n_constraints: 0,
                max_evals: 200,
                ftol_abs: 1e-6,
                ftol_rel: 1e-6,
                initial_radius: 0.1 * (1.0 - lo).max(1e-3),
                bounded_evaluations: true,
            };
            let (v, x) = basin_optimizer::minimize(Algorithm::Cobyla, &call, &|_, _, _| 0.0, settings);
            if v.is_finite() && best.as_ref().is_none_or(|(b, _)| v < *b) {
                best = Some((v, x));
            }
        }
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        let x = best.map_or_else(|| starts[starts.len() - 1].clone(), |(_, x)| x);
        Ok(x.into_iter().map(|v| v.clamp(lo, 1.0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize) -> Vec<Vec<f64>> {
        let mut r = StdRng::seed_from_u64(7);
        (0..n).map(|_| uniform_draw(&mut r, 2, 0.0)).collect()
    }

    /// A smooth function of two variables.
    fn f(x: &[f64]) -> f64 {
        (3.0 * x[0]).sin() + x[1] * x[1]
    }

    #[test]
    fn the_gp_recovers_a_smooth_function() {
        let xs = grid(40);
        let ys: Vec<f64> = xs.iter().map(|x| f(x)).collect();
        let gp = Surrogate::fit(&xs, &ys).unwrap();
        let mut r = StdRng::seed_from_u64(99);
        let mut worst: f64 = 0.0;
        for _ in 0..200 {
            let x = uniform_draw(&mut r, 2, 0.05);
            let x = vec![x[0].min(0.95), x[1].min(0.95)];
            let (m, sd) = gp.predict(&x).unwrap();
            worst = worst.max((m - f(&x)).abs());
            assert!(sd < 0.1, "sd {sd} at {x:?}");
        }
        // The function spans about 2; the fit is within 1% of that inside the hull.
        assert!(worst < 0.02, "worst error {worst}");
        // At a data point the GP interpolates with no uncertainty.
        let (m, sd) = gp.predict(&xs[3]).unwrap();
        assert!((m - ys[3]).abs() < 1e-4 && sd < 1e-2, "{m} vs {}, sd {sd}", ys[3]);
    }

    /// A toy trade-off: loss falls and cost rises with every multiplier.
    fn tradeoff(n: usize) -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
        let mut r = StdRng::seed_from_u64(3);
        let xs: Vec<Vec<f64>> = (0..n).map(|_| uniform_draw(&mut r, 3, 0.25)).collect();
        let loss = xs.iter().map(|x| x.iter().map(|w| (1.0 - w).powi(2)).sum::<f64>() + 0.3).collect();
        let cost = xs.iter().map(|x| x.iter().map(|w| w * w).sum::<f64>()).collect();
        (xs, loss, cost)
    }

    fn propose(lambda: f64) -> Vec<f64> {
        let (xs, loss, cost) = tradeoff(25);
        let models = [Surrogate::fit(&xs, &loss).unwrap(), Surrogate::fit(&xs, &cost).unwrap()];
        let acq = Acquisition {
            models: [&models[0], &models[1]],
            scale: [Range::of(&loss), Range::of(&cost)],
            lambda,
            beta: 1.0,
        };
        acq.minimise(&xs, 0.25, &mut StdRng::seed_from_u64(5)).unwrap()
    }

    fn mean(x: &[f64]) -> f64 {
        x.iter().sum::<f64>() / x.len() as f64
    }

    #[test]
    fn the_acquisition_follows_the_tradeoff() {
        let cheap = propose(0.05);
        let balanced = propose(0.5);
        let accurate = propose(0.95);
        assert!(mean(&cheap) < 0.5, "cost-weighted proposal {cheap:?}");
        assert!(mean(&accurate) > 0.75, "loss-weighted proposal {accurate:?}");
        assert!(
            mean(&cheap) < mean(&balanced) && mean(&balanced) < mean(&accurate),
            "{cheap:?} {balanced:?} {accurate:?}"
        );
        // The balanced proposal sits near the middle of the front, where λ·loss equals
        // (1 − λ)·cost on the observed scales.
        assert!((0.45..0.85).contains(&mean(&balanced)), "balanced proposal {balanced:?}");
    }

    #[test]
    fn updates_grow_the_pool_up_to_its_size_and_repeat() {
        let opts = JoslimOptions { prior: 6, per_update: 3, pool: 8, ..JoslimOptions::default() };
        let cost = |wm: &[f64]| -> Result<f64, JoslimError> { Ok(wm.iter().map(|w| w * w).sum()) };
        let run = || {
            let mut s = JoslimState::start(&opts, 3, 0.25, 11, cost).unwrap();
            for _ in 0..3 {
                let losses: Vec<f64> = s.pool.iter().map(|m| m.wm.iter().map(|w| 1.0 - w).sum()).collect();
                s.update(&opts, &losses, 0.25, 11, cost).unwrap();
            }
            s
        };
        let s = run();
        assert_eq!(s.pool.len(), 8);
        assert_eq!(s.updates, 3);
        // The oldest left first: the prior is gone after 3 updates of 3.
        assert!(s.pool.iter().all(|m| m.born >= 1));
        assert!(s.pool.iter().all(|m| m.wm.iter().all(|&w| (0.25..=1.0).contains(&w))));
        assert_eq!(s, run(), "updates are a function of the seed and the data");
        assert!(!s.due(&opts, 3 * opts.tau) && s.due(&opts, 4 * opts.tau));
        assert_eq!(s.sample(11, 7, 2), s.sample(11, 7, 2));
    }
}
