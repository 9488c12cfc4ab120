//! Configuration references: the one reader behind `eval --configs`, `export --config` and
//! `search --from`, so that every command accepts the same forms.
//!
//! A reference is `FILE` or `FILE#TARGET`. FILE is a `slimc search` result (TARGET: one of
//! its targets, `50%`, `0.5` or `20M`), a `slimc eval --pareto` front (TARGET: a MAC budget,
//! `20M` or `50%`; the most accurate point within it), or a text file of configurations, one
//! multiplier per search dimension on each line (TARGET: a line number). Without TARGET a
//! reference names every configuration of the file; where one is needed, the file must
//! hold exactly one.

use std::path::{Path, PathBuf};

use super::eval::Target;
use super::pareto::ParetoFile;
use super::search::SearchState;
use super::SearchFileError;
use crate::cost::{self, human};
use crate::ir::Network;

/// `FILE` or `FILE#TARGET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRef {
    pub path: PathBuf,
    pub target: Option<String>,
}

impl ConfigRef {
    /// Splits at the last `#`, unless the whole text names an existing file.
    pub fn parse(text: &str) -> ConfigRef {
        match text.rsplit_once('#') {
            Some((file, target)) if !Path::new(text).is_file() => {
                ConfigRef { path: file.into(), target: Some(target.to_string()) }
            }
            _ => ConfigRef { path: text.into(), target: None },
        }
    }
}

/// Why a reference names no configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{}: {what}", path.display())]
    File { path: PathBuf, what: SearchFileError },
    #[error("{} holds several configurations; name one as {}#TARGET ({listing})", path.display(), path.display())]
    NoTarget { path: PathBuf, listing: String },
    #[error("{}: cannot read target `{target}` ({listing})", path.display())]
    BadTarget { path: PathBuf, target: String, listing: String },
    #[error("{}: no target {target} ({listing})", path.display())]
    NoMatch { path: PathBuf, target: String, listing: String },
    #[error("{}: no configuration within {budget} MACs ({listing})", path.display())]
    OverBudget { path: PathBuf, budget: String, listing: String },
    #[error("{}: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
}

/// A configuration file, read and checked against the network.
enum ConfigFile {
    Search(SearchState),
    Pareto(ParetoFile),
    /// Multipliers, one vector per line, with their line numbers.
    Lines(Vec<(usize, Vec<f64>)>),
}

/// `20M`, `1.5G`, `800K` or a plain count, as MACs.
pub fn parse_macs(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, scale) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1e3),
        (i, 'M' | 'm') => (&s[..i], 1e6),
        (i, 'G' | 'g') => (&s[..i], 1e9),
        _ => (s, 1.0),
    };
    let v = num.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0)? * scale;
    Some(v.round() as u64)
}

/// `75%` or `0.75` of `full` MACs.
pub fn parse_fraction(t: &str, full: u64) -> Option<u64> {
    let t = t.trim();
    let frac = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => t.parse::<f64>().ok()?,
    };
    (frac > 0.0 && frac <= 1.0).then(|| (frac * full as f64).round() as u64)
}

/// A target as MACs: a fraction of `full` (`50%`, `0.5`) or a count (`20M`).
fn target_macs(t: &str, full: u64) -> Option<u64> {
    if t.ends_with('%') || t.trim().parse::<f64>().is_ok_and(|v| v <= 1.0) {
        parse_fraction(t, full)
    } else {
        parse_macs(t)
    }
}

impl ConfigFile {
    fn read(path: &Path, net: &Network) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.into(), error })?;
        let bad = |what| ConfigError::File { path: path.into(), what };
        if text.trim_start().starts_with('{') {
            let is_pareto = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("front").is_some());
            return if is_pareto {
                ParetoFile::parse(&text, net).map(ConfigFile::Pareto).map_err(bad)
            } else {
                SearchState::parse(&text, net).map(ConfigFile::Search).map_err(bad)
            };
        }
        let dims = net.space.search_dim();
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let wm: Result<Vec<f64>, _> = line.split(',').map(|t| t.trim().parse::<f64>()).collect();
            match wm {
                Ok(wm) if wm.len() == dims && wm.iter().all(|&w| w > 0.0 && w <= 1.0) => lines.push((i + 1, wm)),
                _ => return Err(bad(SearchFileError::ConfigLine { line: i + 1, dims })),
            }
        }
        if lines.is_empty() {
            return Err(bad(SearchFileError::Empty));
        }
        Ok(ConfigFile::Lines(lines))
    }

    /// What the file offers, for messages.
    fn listing(&self, path: &Path, full: u64) -> String {
        match self {
            ConfigFile::Search(s) if s.found.is_empty() => "it has found no configuration yet".into(),
            ConfigFile::Search(s) => {
                let ts: Vec<String> = s
                    .found
                    .iter()
                    .map(|f| {
                        let share = 100.0 * f.target_macs as f64 / full.max(1) as f64;
                        format!("#{share:.0}% ({} MACs)", human(f.target_macs))
                    })
                    .collect();
                format!("{} has {}", path.display(), ts.join(", "))
            }
            ConfigFile::Pareto(p) => {
                let ts: Vec<String> = p.front_points().map(|r| human(r.macs)).collect();
                format!("its front has configurations at {} MACs", ts.join(", "))
            }
            ConfigFile::Lines(lines) => format!("{} configurations, lines {}", lines.len(), line_numbers(lines)),
        }
    }

    /// The configurations `target` names, cheapest first (all of them without a target).
    fn pick(&self, target: Option<&str>, net: &Network, path: &Path) -> Result<Vec<Stored>, ConfigError> {
        let full = cost::cost(net, &net.full_width()).0.macs;
        let listing = || self.listing(path, full);
        let unreadable = |t: &str| ConfigError::BadTarget { path: path.into(), target: t.into(), listing: listing() };
        let missing = |t: &str| ConfigError::NoMatch { path: path.into(), target: t.into(), listing: listing() };
        match self {
            ConfigFile::Search(state) => {
                let mut found: Vec<_> = match target {
                    None => state.found.iter().collect(),
                    Some(t) => {
                        let macs = target_macs(t, full).ok_or_else(|| unreadable(t))?;
                        // Targets given as percentages were rounded to MACs: allow that rounding.
                        vec![state.target(macs, full / 1000).ok_or_else(|| missing(t))?]
                    }
                };
                if found.is_empty() {
                    return Err(ConfigError::File { path: path.into(), what: SearchFileError::Empty });
                }
                found.sort_by_key(|f| f.point.macs);
                Ok(found.into_iter().map(|f| Stored::Channels(f.point.channels.clone())).collect())
            }
            ConfigFile::Pareto(file) => match target {
                None => Ok(file.front_points().map(|r| Stored::Channels(r.channels.clone())).collect()),
                Some(t) => {
                    let budget = target_macs(t, full).ok_or_else(|| unreadable(t))?;
                    let over =
                        || ConfigError::OverBudget { path: path.into(), budget: human(budget), listing: listing() };
                    let p = file.pick(budget).ok_or_else(over)?;
                    Ok(vec![Stored::Channels(p.channels.clone())])
                }
            },
            ConfigFile::Lines(lines) => match target {
                None => Ok(lines.iter().map(|(_, wm)| Stored::Multipliers(wm.clone())).collect()),
                Some(t) => {
                    let n = t.trim().parse::<usize>().map_err(|_| unreadable(t))?;
                    let (_, wm) = lines.iter().find(|(line, _)| *line == n).ok_or_else(|| missing(t))?;
                    Ok(vec![Stored::Multipliers(wm.clone())])
                }
            },
        }
    }
}

fn line_numbers(lines: &[(usize, Vec<f64>)]) -> String {
    lines.iter().map(|(n, _)| format!("#{n}")).collect::<Vec<_>>().join(", ")
}

/// Every configuration `reference` names, cheapest first (`eval --configs`).
pub fn targets(reference: &ConfigRef, net: &Network) -> Result<Vec<Target>, ConfigError> {
    let picked = ConfigFile::read(&reference.path, net)?.pick(reference.target.as_deref(), net, &reference.path)?;
    Ok(picked
        .into_iter()
        .map(|c| match c {
            Stored::Channels(ch) => Target::Channels(ch),
            Stored::Multipliers(wm) => Target::Multipliers(wm),
        })
        .collect())
}

/// A configuration as a file stores it.
enum Stored {
    /// Channels per search dimension (a search result, a front).
    Channels(Vec<u32>),
    /// A multiplier per search dimension (a text line).
    Multipliers(Vec<f64>),
}

/// The one configuration `reference` names, as channels per search dimension
/// (`export --config`, `search --from`): its target, or the file's only configuration.
pub fn channels(reference: &ConfigRef, net: &Network) -> Result<Vec<u32>, ConfigError> {
    let path = &reference.path;
    let file = ConfigFile::read(path, net)?;
    let mut picked = file.pick(reference.target.as_deref(), net, path)?;
    if picked.len() != 1 {
        let full = cost::cost(net, &net.full_width()).0.macs;
        return Err(ConfigError::NoTarget { path: path.clone(), listing: file.listing(path, full) });
    }
    match picked.remove(0) {
        Stored::Channels(ch) => Ok(ch),
        Stored::Multipliers(wm) => net
            .space
            .decode(&wm, net.rounding)
            .map_err(|e| ConfigError::Decode { path: path.clone(), reason: e.to_string() }),
    }
}
