//! Width multipliers → channels (docs/design.md §4), and the hierarchical `channel_space`.

use serde::Serialize;

use super::{Network, Op, Rounding, SearchSpace, Section};

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The wrong number of multipliers.
    #[error("expected {expected} width multipliers (one per search dimension), got {got}")]
    Length { expected: usize, got: usize },
    /// A multiplier outside (0, 1].
    #[error("width multiplier {index} is {value}; multipliers must be in (0, 1]")]
    OutOfRange { index: usize, value: f64 },
}

/// Why a vector of channels (one count per search dimension) is not a configuration of
/// the network: see [`SearchSpace::check`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelsError {
    #[error("{got} channel counts, the network has {expected} search dimensions")]
    Length { expected: usize, got: usize },
    #[error("dimension {dim} has {channels} channels, it takes 1 to {base}")]
    Range { dim: usize, channels: u32, base: u32 },
    #[error("dimension {dim} has {channels} channels, not a multiple of its divisor {divisor}")]
    Divisor { dim: usize, channels: u32, divisor: u32 },
    #[error("dimension {dim} has {channels} channels, fewer than the {min} it must keep")]
    Bound { dim: usize, channels: u32, min: u32 },
}

/// One entry of the hierarchical channel space: a dimension's full-width count, or a
/// stage's list of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SpaceEntry {
    Dim(u32),
    Stage(Vec<u32>),
}

/// A layer's channels at one width: what the reference code's `set_real_ch` applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LayerShape {
    #[serde(rename = "in")]
    pub in_c: u32,
    pub out: u32,
    pub groups: u32,
}

impl SearchSpace {
    /// The number of search dimensions (`search_dim`).
    pub fn search_dim(&self) -> usize {
        self.dims.len()
    }

    /// `channel_space`: the stem's dimensions, one list per stage, then the head's.
    pub fn channel_space(&self) -> Vec<SpaceEntry> {
        let mut out = Vec::new();
        for d in self.dims.iter().filter(|d| matches!(d.section, Section::Input | Section::Stem)) {
            out.push(SpaceEntry::Dim(d.base));
        }
        for s in 1..=self.stages {
            out.push(SpaceEntry::Stage(
                self.dims.iter().filter(|d| d.section == Section::Stage(s)).map(|d| d.base).collect(),
            ));
        }
        for d in self.dims.iter().filter(|d| d.section == Section::Head) {
            out.push(SpaceEntry::Dim(d.base));
        }
        out
    }

    /// `decode_wm`: one multiplier per dimension → channels per dimension. Each count is
    /// `rounding(base × w)`, rounded down to its divisor (never below it), raised to its
    /// lower bounds, and kept within `1..=base`.
    pub fn decode(&self, wm: &[f64], rounding: Rounding) -> Result<Vec<u32>, DecodeError> {
        if wm.len() != self.dims.len() {
            return Err(DecodeError::Length { expected: self.dims.len(), got: wm.len() });
        }
        if let Some((index, &value)) = wm.iter().enumerate().find(|(_, &w)| !(w > 0.0 && w <= 1.0)) {
            return Err(DecodeError::OutOfRange { index, value });
        }
        let mut ch: Vec<u32> = self
            .dims
            .iter()
            .zip(wm)
            .map(|(d, &w)| {
                let v = rounding.apply(f64::from(d.base) * w).clamp(1, d.base);
                round_to_divisor(v, d.divisor, d.base)
            })
            .collect();
        for i in 0..self.dims.len() {
            let d = &self.dims[i];
            for bound in &d.at_least {
                let need = bound.eval(&ch);
                if ch[i] < need {
                    ch[i] = need.div_ceil(d.divisor) * d.divisor;
                    ch[i] = ch[i].min(d.base);
                }
            }
        }
        Ok(ch)
    }

    /// Whether `ch` (channels per dimension) is a configuration `decode` could produce:
    /// each count in `1..=base`, a multiple of its divisor (or the base), and at least its
    /// lower bounds (capped at the base, as decode caps them). Says which count is wrong.
    pub fn check(&self, ch: &[u32]) -> Result<(), ChannelsError> {
        if ch.len() != self.dims.len() {
            return Err(ChannelsError::Length { expected: self.dims.len(), got: ch.len() });
        }
        for (dim, (d, &c)) in self.dims.iter().zip(ch).enumerate() {
            if c < 1 || c > d.base {
                return Err(ChannelsError::Range { dim, channels: c, base: d.base });
            }
            if !(c.is_multiple_of(d.divisor.max(1)) || c == d.base) {
                return Err(ChannelsError::Divisor { dim, channels: c, divisor: d.divisor });
            }
            if let Some(min) = d.at_least.iter().map(|b| b.eval(ch).min(d.base)).find(|&min| c < min) {
                return Err(ChannelsError::Bound { dim, channels: c, min });
            }
        }
        Ok(())
    }

    /// Whether [`check`](Self::check) accepts `ch`.
    pub fn admits(&self, ch: &[u32]) -> bool {
        self.check(ch).is_ok()
    }

    /// Channels per dimension as fractions of the full-width counts.
    pub fn multipliers(&self, ch: &[u32]) -> Vec<f64> {
        ch.iter().zip(&self.dims).map(|(&c, d)| f64::from(c) / f64::from(d.base)).collect()
    }

    /// The same multiplier for every dimension.
    pub fn uniform(&self, w: f64) -> Vec<f64> {
        vec![w; self.dims.len()]
    }
}

fn round_to_divisor(v: u32, divisor: u32, base: u32) -> u32 {
    if divisor <= 1 {
        return v;
    }
    (v / divisor * divisor).max(divisor).min(base)
}

impl Network {
    /// `decode_ch`: every layer's (in, out, groups) when the dimensions have `dims` channels,
    /// indexed like `self.layers`.
    pub fn layer_shapes(&self, dims: &[u32]) -> Vec<LayerShape> {
        let outs: Vec<u32> = self.layers.iter().map(|(_, l)| l.width.eval(dims)).collect();
        self.layers
            .iter()
            .map(|(id, l)| {
                let in_c = l.inputs.first().map_or(self.input[0], |i| outs[i.index()]);
                let groups = match &l.op {
                    Op::Conv { groups, .. } => groups.eval(in_c),
                    _ => 1,
                };
                LayerShape { in_c, out: outs[id.index()], groups }
            })
            .collect()
    }

    /// Channels per dimension at a uniform width multiplier.
    pub fn decode_uniform(&self, w: f64, rounding: Rounding) -> Result<Vec<u32>, DecodeError> {
        self.space.decode(&self.space.uniform(w), rounding)
    }

    /// Full width: every dimension at its base.
    pub fn full_width(&self) -> Vec<u32> {
        self.space.dims.iter().map(|d| d.base).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Dim, Width};

    fn dim(base: u32, divisor: u32) -> Dim {
        Dim { base, section: Section::Stem, divisor, at_least: Vec::new(), layers: Vec::new(), origins: Vec::new() }
    }

    #[test]
    fn make_divisible_matches_mobilenet() {
        let r = Rounding::MakeDivisible(8);
        // torchvision's _make_divisible(v, 8).
        for (v, want) in [
            (32.0 * 0.35, 16),
            (18.0, 24),
            (4.0, 8),
            (30.0, 32),
            (1280.0 * 0.5, 640),
            (43.2, 40),
            (100.0, 104),
            (11.0, 16),
        ] {
            assert_eq!(r.apply(v), want, "make_divisible({v})");
        }
        assert_eq!(Rounding::Floor.apply(0.29 * 100.0), 29);
        assert_eq!(Rounding::Floor.apply(4.8), 4);
        assert_eq!(Rounding::Nearest.apply(2.5), 2);
        assert_eq!(Rounding::Nearest.apply(3.5), 4);
        assert_eq!(Rounding::parse("make_divisible(4)"), Some(Rounding::MakeDivisible(4)));
        assert_eq!(Rounding::parse("make_divisible:16"), Some(Rounding::MakeDivisible(16)));
        assert_eq!(Rounding::parse("ceil"), None);
    }

    #[test]
    fn decode_applies_divisors_bounds_and_limits() {
        let mut space = SearchSpace { dims: vec![dim(64, 1), dim(64, 16), dim(32, 1)], stages: 0 };
        space.dims[2].at_least.push(Width::Dim(0));
        let ch = space.decode(&[0.5, 0.3, 0.25], Rounding::Floor).unwrap();
        // 64·0.3 = 19 → 16 (multiple of 16); dim 2 is raised to dim 0's 32.
        assert_eq!(ch, vec![32, 16, 32]);
        // Never below the divisor, never below 1.
        assert_eq!(space.decode(&[0.01, 0.01, 0.01], Rounding::Floor).unwrap(), vec![1, 16, 1]);
        assert_eq!(space.decode(&[1.0, 1.0, 1.0], Rounding::MakeDivisible(8)).unwrap(), vec![64, 64, 32]);
        assert!(matches!(space.decode(&[1.0], Rounding::Floor), Err(DecodeError::Length { expected: 3, got: 1 })));
        assert!(matches!(
            space.decode(&[1.0, 0.0, 1.0], Rounding::Floor),
            Err(DecodeError::OutOfRange { index: 1, .. })
        ));
        assert!(space.decode(&[1.0, f64::NAN, 1.0], Rounding::Floor).is_err());
        // `admits` accepts what decode produces and rejects the rest.
        assert!(space.admits(&[32, 16, 32]) && space.admits(&[1, 16, 1]) && space.admits(&[64, 64, 64 / 2]));
        assert!(!space.admits(&[32, 20, 32]), "not a multiple of 16");
        assert!(!space.admits(&[16, 16, 8]), "below dim 0");
        assert!(!space.admits(&[65, 16, 65]) && !space.admits(&[0, 16, 1]) && !space.admits(&[32, 16]));
    }

    #[test]
    fn widths_evaluate() {
        let dims = [10, 6];
        let w = Width::Sum(vec![Width::Dim(0), Width::Part { of: Box::new(Width::Dim(1)), parts: 2 }, Width::Fixed(5)]);
        assert_eq!(w.eval(&dims), 18);
        let r = Width::Ratio { of: Box::new(Width::Dim(0)), ratio: 0.25, rounding: Rounding::Floor };
        assert_eq!(r.eval(&dims), 2);
        assert_eq!(r.eval(&[1, 1]), 1, "ratios never reach zero");
    }
}
