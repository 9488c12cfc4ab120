//! Training schemes: every decision that depends on the scheme lives here: the widths
//! each step trains, BN switches, inplace distillation, whether the run needs a validation
//! split, the widths evaluation and a Pareto front use by default, the run directory's
//! name, and what a search may start from. Train, eval, search and bench all hold a
//! [`Scheme`].

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::joslim::{JoslimOptions, JoslimState};
use super::{OptionError, Sandwich};
use crate::runtime::{RuntimeError, SlimNet, WidthConfig};

/// Which widths each step trains.
#[derive(Clone, Debug, PartialEq)]
pub enum Scheme {
    /// US-Nets: max, min and random widths, inplace distillation.
    Us,
    /// S-Nets: every listed width each step, one BN per width.
    S(Vec<f64>),
    /// One width, plain training (the baseline).
    Fixed(f64),
    /// Joslim: the sandwich's random widths come from a pool that Gaussian processes over
    /// loss and cost steer toward the Pareto front (`joslim`).
    Joslim(JoslimOptions),
}

/// The most switches (widths) an S-Nets run trains, each with its own BN.
pub const MAX_SWITCHES: usize = 64;

/// The S-Nets switches when none are given: the paper's four widths.
pub const DEFAULT_SWITCHES: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

impl Scheme {
    /// The scheme's part of a default run directory's name: `us`, `s`, `fixed0.5`, `joslim`.
    pub fn run_name(&self) -> String {
        match self {
            Scheme::Us => "us".to_string(),
            Scheme::S(_) => "s".to_string(),
            Scheme::Fixed(w) => format!("fixed{w}"),
            Scheme::Joslim(_) => "joslim".to_string(),
        }
    }

    /// The scheme as a user names it, with its settings (a run's banner).
    pub fn describe(&self) -> String {
        match self {
            Scheme::Us => "scheme us".into(),
            Scheme::S(ws) => format!("scheme s (widths {ws:?})"),
            Scheme::Fixed(w) => format!("scheme fixed (width {w})"),
            Scheme::Joslim(j) => format!(
                "scheme joslim (prior {}, tau {}, {} per update, pool {}, objective {:?}, beta {})",
                j.prior,
                j.tau,
                j.per_update,
                j.pool,
                format!("{:?}", j.objective).to_lowercase(),
                j.beta
            ),
        }
    }

    /// What one training step of the scheme trains, for a benchmark's report:
    /// `sandwich (max, min, 2 random; inplace distillation)`, `fixed 0.5`, ….
    pub fn step_summary(&self, sandwich: &Sandwich) -> String {
        let distill = if sandwich.distill { "; inplace distillation" } else { "" };
        match self {
            Scheme::Us => format!("sandwich (max, min, {} random{distill})", sandwich.random),
            Scheme::S(ws) => format!("switches {ws:?}"),
            Scheme::Fixed(w) => format!("fixed {w}"),
            Scheme::Joslim(_) => format!("joslim sandwich (max, min, {} from the pool{distill})", sandwich.random),
        }
    }

    /// The scheme's own settings in range (the `scheme` field of the options).
    pub fn validate(&self) -> Result<(), OptionError> {
        let width = |w: f64| w > 0.0 && w <= 1.0;
        let error = |problem: String| Err(OptionError { field: "scheme", problem });
        match self {
            Scheme::Us => Ok(()),
            Scheme::Fixed(w) if !width(*w) => error(format!("fixed width must be in (0, 1], got {w}")),
            Scheme::Fixed(_) => Ok(()),
            Scheme::S(ws) if ws.is_empty() || ws.len() > MAX_SWITCHES => {
                error(format!("s needs 1 to {MAX_SWITCHES} widths, got {}", ws.len()))
            }
            Scheme::S(ws) if !ws.iter().all(|&w| width(w)) => error(format!("s widths must be in (0, 1], got {ws:?}")),
            Scheme::S(_) => Ok(()),
            Scheme::Joslim(j) => j.validate(),
        }
    }

    /// The BN switches the model needs: the S-Nets widths, else none (shared BN).
    pub fn switches(&self) -> Vec<f64> {
        match self {
            Scheme::S(ws) => ws.clone(),
            Scheme::Us | Scheme::Fixed(_) | Scheme::Joslim(_) => Vec::new(),
        }
    }

    /// Whether the widths after the first learn from its softmax (inplace distillation).
    pub fn distills(&self) -> bool {
        match self {
            Scheme::Us | Scheme::Joslim(_) => true,
            Scheme::S(_) | Scheme::Fixed(_) => false,
        }
    }

    /// Whether training needs a validation split (Joslim measures its pool's losses there).
    pub fn needs_validation(&self) -> bool {
        matches!(self, Scheme::Joslim(_))
    }

    /// Whether the model runs any configuration between its smallest width and full width
    /// (shared BN over trained random widths): what a search needs. `Some(min_width)` then.
    pub fn universal(&self, min_width: f64) -> Option<f64> {
        match self {
            Scheme::Us | Scheme::Joslim(_) => Some(min_width),
            Scheme::S(_) | Scheme::Fixed(_) => None,
        }
    }

    /// The smallest and largest widths the scheme trains.
    pub fn extremes(&self, min_width: f64) -> (f64, f64) {
        match self {
            Scheme::Us | Scheme::Joslim(_) => (min_width, 1.0),
            Scheme::S(ws) => (ws.iter().copied().fold(f64::INFINITY, f64::min), ws.iter().copied().fold(0.0, f64::max)),
            Scheme::Fixed(w) => (*w, *w),
        }
    }

    /// The widths a run is evaluated at by default: those the scheme trained (US and
    /// Joslim: quarter steps from the smallest width).
    pub fn default_widths(&self, min_width: f64) -> Vec<f64> {
        match self {
            Scheme::Us | Scheme::Joslim(_) => steps_from(min_width, 4),
            Scheme::S(ws) => ws.clone(),
            Scheme::Fixed(w) => vec![*w],
        }
    }

    /// The uniform widths of a Pareto evaluation: eighth steps from the smallest trained
    /// width to 1 (the switches of an S-Nets run, the width of a fixed one).
    pub fn pareto_widths(&self, min_width: f64) -> Vec<f64> {
        match self {
            Scheme::Us | Scheme::Joslim(_) => steps_from(min_width, 8),
            Scheme::S(_) | Scheme::Fixed(_) => self.default_widths(min_width),
        }
    }

    /// The widths of step `step`: the sandwich (largest, smallest, then random widths; a
    /// Joslim run's random ones drawn from its pool, none before it has one), every
    /// S-Nets switch from the widest, or the fixed width. Random draws are a function of
    /// `seed` and `step` alone, so a resumed run repeats them.
    pub fn step_widths<B: burn::tensor::backend::Backend>(
        &self,
        model: &SlimNet<B>,
        sandwich: &Sandwich,
        joslim: Option<&JoslimState>,
        (seed, step): (u64, usize),
    ) -> Result<Vec<WidthConfig>, RuntimeError> {
        let net = &model.net;
        let decode = |wm: &[f64]| net.space.decode(wm, net.rounding).map(WidthConfig::new).map_err(RuntimeError::from);
        match self {
            Scheme::Joslim(_) => {
                let n = net.space.search_dim();
                let mut out = vec![decode(&vec![1.0; n])?, decode(&vec![sandwich.min_width; n])?];
                if let Some(j) = joslim {
                    for wm in j.sample(seed, step, sandwich.random) {
                        out.push(decode(&wm)?);
                    }
                }
                Ok(out)
            }
            Scheme::Us => {
                sandwich.widths(model, &mut StdRng::seed_from_u64(seed.wrapping_mul(31).wrapping_add(step as u64)))
            }
            Scheme::S(ws) => {
                let mut ws = ws.clone();
                ws.sort_by(|a, b| b.total_cmp(a));
                ws.iter().map(|&w| model.uniform(w)).collect()
            }
            Scheme::Fixed(w) => Ok(vec![model.uniform(*w)?]),
        }
    }
}

/// `lo`, then the multiples of `1 / parts` above it up to 1.
fn steps_from(lo: f64, parts: u32) -> Vec<f64> {
    let mut ws = vec![lo];
    ws.extend((1..=parts).map(|k| f64::from(k) / f64::from(parts)).filter(|&w| w > lo + 1e-9));
    ws
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_widths_follow_what_the_scheme_trained() {
        assert_eq!(Scheme::Us.default_widths(0.25), vec![0.25, 0.5, 0.75, 1.0]);
        assert_eq!(Scheme::Us.default_widths(0.35), vec![0.35, 0.5, 0.75, 1.0]);
        assert_eq!(Scheme::Us.pareto_widths(0.25), vec![0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]);
        assert_eq!(Scheme::S(vec![0.5, 1.0]).pareto_widths(0.25), vec![0.5, 1.0]);
        assert_eq!(Scheme::Fixed(0.75).default_widths(0.25), vec![0.75]);
        assert_eq!(Scheme::S(vec![1.0, 0.3]).extremes(0.25), (0.3, 1.0));
        assert_eq!(Scheme::Fixed(0.5).extremes(0.25), (0.5, 0.5));
    }

    #[test]
    fn each_decision_per_scheme() {
        let joslim = Scheme::Joslim(JoslimOptions::default());
        assert!(Scheme::Us.distills() && joslim.distills());
        assert!(!Scheme::S(vec![1.0]).distills() && !Scheme::Fixed(1.0).distills());
        assert!(joslim.needs_validation() && !Scheme::Us.needs_validation());
        assert_eq!(Scheme::S(vec![0.5, 1.0]).switches(), vec![0.5, 1.0]);
        assert!(Scheme::Us.switches().is_empty() && joslim.switches().is_empty());
        assert_eq!(Scheme::Us.universal(0.3), Some(0.3));
        assert_eq!(Scheme::Fixed(1.0).universal(0.3), None);
        assert_eq!(Scheme::Fixed(0.5).run_name(), "fixed0.5");
        assert_eq!(joslim.run_name(), "joslim");
    }

    #[test]
    fn settings_out_of_range_name_the_scheme_field() {
        for bad in [Scheme::Fixed(0.0), Scheme::Fixed(1.5), Scheme::S(vec![]), Scheme::S(vec![0.5, 2.0])] {
            assert_eq!(bad.validate().unwrap_err().field, "scheme", "{bad:?}");
        }
        assert_eq!(Scheme::S(vec![0.5; MAX_SWITCHES + 1]).validate().unwrap_err().field, "scheme");
        assert!(Scheme::S(DEFAULT_SWITCHES.to_vec()).validate().is_ok());
    }
}
