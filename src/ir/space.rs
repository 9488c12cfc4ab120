//! Width multipliers → channels (DESIGN.md §4), and the hierarchical `channel_space`.

use serde::Serialize;

use super::{Network, Op, Rounding, SearchSpace, Section};

#[derive(Clone, Debug, PartialEq)]
pub enum DecodeError {
    /// `--wm` has the wrong number of entries.
    Length { expected: usize, got: usize },
    /// A multiplier outside (0, 1].
    OutOfRange { index: usize, value: f64 },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Length { expected, got } => {
                write!(f, "expected {expected} width multipliers (one per search dimension), got {got}")
            }
            DecodeError::OutOfRange { index, value } => {
                write!(f, "width multiplier {index} is {value}; multipliers must be in (0, 1]")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

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
            out.push(SpaceEntry::Stage(self.dims.iter().filter(|d| d.section == Section::Stage(s)).map(|d| d.base).collect()));
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

