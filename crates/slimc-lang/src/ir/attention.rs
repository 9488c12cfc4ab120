//! The geometry of [`super::Op::Attend`]: how its channels split into heads at a width,
//! which query heads share a key/value head, and Swin's windows (their shift, the
//! relative position of two tokens, the mask of a shifted window). Every backend reads
//! these numbers from here.

use serde::Serialize;

/// How attention's channels split into heads, and so what a narrower width narrows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Heads {
    /// Heads of `d` channels: channels `h·d .. (h+1)·d` are head `h`. A narrower width
    /// keeps a prefix of whole heads (`attend(..., heads=H)`; HydraViT's nesting).
    Width(u32),
    /// `n` heads at every width: channel `j·n + h` is dimension `j` of head `h`. A narrower
    /// width keeps the leading dimensions of every head (`fixed_heads=true`).
    Count(u32),
}

impl Heads {
    /// `(heads, head width)` on `c` query channels.
    pub fn split(self, c: u32) -> (u32, u32) {
        match self {
            Heads::Width(d) => (c / d.max(1), d),
            Heads::Count(n) => (n, c / n.max(1)),
        }
    }
}

/// Swin's window attention: tokens attend within `size × size` windows, after the map is
/// rolled up and left by `shift` rows and columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub size: u32,
    pub shift: u32,
}

/// What a shifted window adds to the scores of two tokens from different regions
/// (torchvision's value; `exp(−100)` is below f32's smallest normal number).
pub const MASKED: f32 = -100.0;

impl Window {
    /// Positions in one window.
    pub fn tokens(self) -> usize {
        (self.size * self.size) as usize
    }

    /// Entries of the relative position bias table per head: `(2·size − 1)²`.
    pub fn relative_positions(self) -> usize {
        let s = 2 * self.size as usize - 1;
        s * s
    }

    /// The shift on a side of `side` pixels: none where one window covers the side (as
    /// torchvision).
    pub fn shift_on(self, side: usize) -> usize {
        if self.size as usize >= side {
            0
        } else {
            self.shift as usize
        }
    }

    /// For each pair `(p, q)` of a window's tokens (row by row, `p` the query), the entry
    /// of the bias table: `(yp − yq + size − 1)·(2·size − 1) + (xp − xq + size − 1)`.
    pub fn relative_index(self) -> Vec<usize> {
        let s = self.size as usize;
        let at = |t: usize| (t / s, t % s);
        let l = self.tokens();
        (0..l * l)
            .map(|pq| {
                let ((yp, xp), (yq, xq)) = (at(pq / l), at(pq % l));
                (yp + s - 1 - yq) * (2 * s - 1) + (xp + s - 1 - xq)
            })
            .collect()
    }

    /// The mask of a shifted window on an `[h, w]` map: `[windows, L, L]` (windows row by
    /// row, `L` tokens each), [`MASKED`] where two tokens of a window came from different
    /// regions of the rolled map, 0 elsewhere. A side is cut into regions at `side − size`
    /// and `side − shift` (the pixels the roll brought round); `None` when nothing shifts.
    pub fn mask(self, [h, w]: [usize; 2]) -> Option<Vec<f32>> {
        let (sy, sx) = (self.shift_on(h), self.shift_on(w));
        if sy == 0 && sx == 0 {
            return None;
        }
        let s = self.size as usize;
        let region = |v: usize, side: usize, shift: usize| {
            if shift == 0 || v < side - s {
                0
            } else if v < side - shift {
                1
            } else {
                2
            }
        };
        let l = self.tokens();
        let (wy, wx) = (h / s, w / s);
        let mut mask = Vec::with_capacity(wy * wx * l * l);
        for (by, bx) in (0..wy).flat_map(|by| (0..wx).map(move |bx| (by, bx))) {
            let label = |t: usize| {
                let (y, x) = (by * s + t / s, bx * s + t % s);
                3 * region(y, h, sy) + region(x, w, sx)
            };
            mask.extend((0..l * l).map(|pq| if label(pq / l) == label(pq % l) { 0.0 } else { MASKED }));
        }
        Some(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_split_by_width_or_by_count() {
        assert_eq!(Heads::Width(64).split(192), (3, 64));
        assert_eq!(Heads::Count(4).split(48), (4, 12));
    }

    #[test]
    fn relative_index_is_torchvisions() {
        // A 2x2 window: tokens (0,0) (0,1) (1,0) (1,1); the table is 3x3.
        let w = Window { size: 2, shift: 0 };
        assert_eq!(w.relative_positions(), 9);
        assert_eq!(w.relative_index(), vec![4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]);
    }

    #[test]
    fn a_shifted_window_masks_pairs_from_different_regions() {
        // A 4x4 map, windows of 2 shifted by 1: the last window holds pixels of four regions.
        let w = Window { size: 2, shift: 1 };
        let mask = w.mask([4, 4]).expect("shifted");
        assert_eq!(mask.len(), 4 * 4 * 4);
        // The first window lies inside region 0: nothing masked.
        assert!(mask[..16].iter().all(|&v| v == 0.0));
        // The last: rows 2, 3 and columns 2, 3, each a different region pair.
        let last = &mask[48..];
        for p in 0..4 {
            for q in 0..4 {
                assert_eq!(last[p * 4 + q], if p == q { 0.0 } else { MASKED }, "{p} {q}");
            }
        }
        // One window covers the map: no shift.
        assert_eq!(Window { size: 4, shift: 2 }.mask([4, 4]), None);
    }
}
