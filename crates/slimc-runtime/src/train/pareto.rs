//! The Pareto front of test accuracy against MACs over evaluated configurations, the area
//! under it between two MAC bounds (one number to compare training schemes), and the file
//! `slimc eval --pareto` writes, from which `slimc export` and `slimc search` take a
//! configuration by budget (`pareto.json#20M`).

use serde::{Deserialize, Serialize};

use super::eval;
use super::search::check_config;
use super::SearchFileError;
use crate::format::eval::Row;
use crate::ir::Network;

/// Indices of the rows on the front, by increasing MACs: each has a strictly higher top-1
/// than every row with at most its MACs.
pub fn front(rows: &[Row]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    // By MACs, the more accurate first among equal MACs.
    order.sort_by(|&a, &b| rows[a].macs.cmp(&rows[b].macs).then(rows[b].top1.total_cmp(&rows[a].top1)));
    let mut best = f64::NEG_INFINITY;
    let mut out = Vec::new();
    for i in order {
        if rows[i].top1 > best {
            best = rows[i].top1;
            out.push(i);
        }
    }
    out
}

/// The mean over budgets `m` in `[lo, hi]` MACs of the best top-1 of a front row with at
/// most `m` MACs (0 where there is none): the area under the front's staircase, divided
/// by the range's width, so it reads as an accuracy.
pub fn area(rows: &[Row], front: &[usize], [lo, hi]: [u64; 2]) -> f64 {
    if hi <= lo {
        return 0.0;
    }
    let (lo, hi) = (lo as f64, hi as f64);
    let mut total = 0.0;
    for (k, &i) in front.iter().enumerate() {
        let from = (rows[i].macs as f64).max(lo);
        let to = front.get(k + 1).map_or(hi, |&j| (rows[j].macs as f64).min(hi));
        if to > from {
            total += rows[i].top1 * (to - from);
        }
    }
    total / (hi - lo)
}

/// What `slimc eval --pareto` writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParetoFile {
    /// The layout of this file ([`crate::format::PARETO`]).
    #[serde(default = "crate::format::unnumbered")]
    pub format: u32,
    pub network: String,
    pub checkpoint: String,
    /// The MAC range of `area`.
    pub bounds: [u64; 2],
    pub area: f64,
    /// Every evaluated configuration.
    pub points: Vec<Row>,
    /// Indices into `points` of the front, by increasing MACs.
    pub front: Vec<usize>,
}

impl ParetoFile {
    pub fn new(network: &str, checkpoint: String, rows: &[eval::Row], bounds: [u64; 2]) -> ParetoFile {
        let points: Vec<Row> = rows.iter().map(Row::from).collect();
        let f = front(&points);
        let area = area(&points, &f, bounds);
        ParetoFile {
            format: crate::format::PARETO,
            network: network.to_string(),
            checkpoint,
            bounds,
            area,
            points,
            front: f,
        }
    }

    /// Reads a stored front for `net`: every point must be a configuration of the network
    /// with the MACs and parameters its channels cost, and the front must be the points'.
    pub fn parse(text: &str, net: &Network) -> Result<ParetoFile, SearchFileError> {
        let not_a_pareto = |e: serde_json::Error| SearchFileError::NotAPareto(e.to_string());
        let doc: serde_json::Value = serde_json::from_str(text).map_err(not_a_pareto)?;
        crate::format::check(&doc, crate::format::PARETO)?;
        let file: ParetoFile = serde_json::from_value(doc).map_err(not_a_pareto)?;
        if file.network != net.name {
            return Err(SearchFileError::OtherNetwork { expected: net.name.clone(), found: file.network.clone() });
        }
        for (i, p) in file.points.iter().enumerate() {
            check_config(net, format!("points[{i}]"), &p.channels, p.macs, p.params)?;
            if !(0.0..=1.0).contains(&p.top1) {
                return Err(SearchFileError::NotAPareto(format!("points[{i}].top1 is {}, not in [0, 1]", p.top1)));
            }
        }
        if file.front != front(&file.points) {
            return Err(SearchFileError::NotAPareto("`front` is not the front of `points`".into()));
        }
        Ok(file)
    }

    /// The most accurate point with at most `budget` MACs (a front point).
    pub fn pick(&self, budget: u64) -> Option<&Row> {
        self.front.iter().rev().map(|&i| &self.points[i]).find(|p| p.macs <= budget)
    }

    /// The front's points, by increasing MACs.
    pub fn front_points(&self) -> impl Iterator<Item = &Row> {
        self.front.iter().map(|&i| &self.points[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(macs: u64, top1: f64) -> eval::Row {
        eval::Row { series: "t".into(), width: None, wm: vec![], channels: vec![], top1, top5: None, macs, params: 0 }
    }

    /// The rows as a Pareto file stores them.
    fn stored(rows: &[eval::Row]) -> Vec<Row> {
        rows.iter().map(Row::from).collect()
    }

    #[test]
    fn the_front_keeps_only_undominated_points() {
        let rows = vec![row(10, 0.5), row(20, 0.4), row(30, 0.7), row(20, 0.6), row(40, 0.7), row(5, 0.1)];
        assert_eq!(front(&stored(&rows)), vec![5, 0, 3, 2]);
    }

    #[test]
    fn the_area_is_the_staircase_mean() {
        let rows = vec![row(10, 0.5), row(30, 0.7)];
        let points = stored(&rows);
        let f = front(&points);
        // [0, 10): nothing, [10, 30): 0.5, [30, 40]: 0.7.
        let a = area(&points, &f, [0, 40]);
        assert!((a - (0.5 * 20.0 + 0.7 * 10.0) / 40.0).abs() < 1e-12, "{a}");
        assert!((area(&points, &f, [10, 30]) - 0.5).abs() < 1e-12);
        assert!((area(&points, &f, [30, 100]) - 0.7).abs() < 1e-12);
        assert_eq!(area(&points, &f, [5, 5]), 0.0);
        // A budget below every point picks nothing; others the best within it.
        let file = ParetoFile::new("n", String::new(), &rows, [0, 40]);
        assert!(file.pick(9).is_none());
        assert_eq!(file.pick(29).map(|r| r.macs), Some(10));
        assert_eq!(file.pick(1000).map(|r| r.macs), Some(30));
    }
}
