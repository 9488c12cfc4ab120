//! Channel inference: a union-find over channel *groups* (docs/design.md §3).
//!
//! Every tensor's channel count is a [`Term`] over groups. A group is free (a future
//! search dimension), fixed, or defined by a derived term (a concat sum, a split part,
//! an SE ratio). Residual adds and multiplies unify terms; group convs, splits and
//! shuffles add divisibility; zero-padded shortcuts add lower bounds.

use crate::ir::Rounding;
use crate::syntax::ast::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    G(GroupId),
    Sum(Vec<Term>),
    Part(Box<Term>, u32),
    Ratio(Box<Term>, f64, Rounding),
}

#[derive(Clone, Debug)]
struct Group {
    parent: u32,
    base: u32,
    fixed: bool,
    def: Option<Term>,
    divisor: u32,
    /// Where this group's count was declared.
    origin: Span,
}

/// Why two terms cannot be made equal, or a divisibility cannot hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Conflict {
    /// Different full-width counts.
    Base {
        left: u32,
        right: u32,
    },
    /// A fixed count would have to follow a slimmable one.
    FixedForced {
        fixed: u32,
        fixed_origin: Span,
        other_origin: Span,
    },
    /// Two different derived widths would have to be equal.
    Derived,
    /// A width would depend on itself.
    Cyclic,
    NotDivisible {
        channels: u32,
        divisor: u32,
        origin: Span,
    },
    /// Divisibility asked of a ratio-derived width, whose value the solver cannot steer.
    DerivedDivisibility,
}

#[derive(Default)]
pub struct Channels {
    groups: Vec<Group>,
    /// `(group, bound, span)`: the group's count is at least the bound's.
    at_least: Vec<(GroupId, Term, Span)>,
    /// `(count, fixed origin, slimmable origin)`: a free group merged into a fixed one.
    absorbed: Vec<(u32, Span, Span)>,
    /// The same, for a free group a slice pinned (`fixed origin` is the slice).
    pinned: Vec<(u32, Span, Span)>,
}

/// Normalisation depth guard: derived definitions nest at most this deep.
const MAX_DEPTH: usize = 256;

impl Channels {
    pub fn fresh(&mut self, base: u32, fixed: bool, origin: Span) -> GroupId {
        let id = self.groups.len() as u32;
        self.groups.push(Group { parent: id, base, fixed, def: None, divisor: 1, origin });
        GroupId(id)
    }

    pub fn find(&mut self, g: GroupId) -> GroupId {
        let mut root = g.0;
        while self.groups[root as usize].parent != root {
            root = self.groups[root as usize].parent;
        }
        let mut cur = g.0;
        while self.groups[cur as usize].parent != root {
            let next = self.groups[cur as usize].parent;
            self.groups[cur as usize].parent = root;
            cur = next;
        }
        GroupId(root)
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    pub fn base_of(&mut self, g: GroupId) -> u32 {
        let r = self.find(g);
        self.groups[r.0 as usize].base
    }

    pub fn is_fixed(&mut self, g: GroupId) -> bool {
        let r = self.find(g);
        self.groups[r.0 as usize].fixed
    }

    pub fn divisor(&mut self, g: GroupId) -> u32 {
        let r = self.find(g);
        self.groups[r.0 as usize].divisor
    }

    pub fn definition(&mut self, g: GroupId) -> Option<Term> {
        let r = self.find(g);
        self.groups[r.0 as usize].def.clone()
    }

    /// Where `g` itself was declared (not its representative).
    pub fn declared_at(&self, g: GroupId) -> Span {
        self.groups[g.0 as usize].origin
    }

    pub fn origin(&mut self, g: GroupId) -> Span {
        let r = self.find(g);
        self.groups[r.0 as usize].origin
    }

    /// Every time a slimmable group was merged into a fixed one: `(count, fixed origin,
    /// slimmable origin)`.
    pub fn absorbed(&self) -> &[(u32, Span, Span)] {
        &self.absorbed
    }

    /// Every time a slice pinned a slimmable group: `(count, slice, slimmable origin)`.
    pub fn pinned(&self) -> &[(u32, Span, Span)] {
        &self.pinned
    }

    /// Drops the absorptions recorded after the first `n`.
    pub fn forget_absorbed_since(&mut self, n: usize) {
        self.absorbed.truncate(n);
    }

    pub fn lower_bounds(&self) -> &[(GroupId, Term, Span)] {
        &self.at_least
    }

    /// The count at full width.
    pub fn base(&mut self, t: &Term) -> u32 {
        match t {
            Term::G(g) => self.base_of(*g),
            Term::Sum(items) => items.iter().map(|t| self.base(t)).fold(0u32, u32::saturating_add),
            Term::Part(t, n) => self.base(t) / n,
            Term::Ratio(t, r, rounding) => rounding.apply(r * f64::from(self.base(t))).max(1),
        }
    }

    /// Representatives in place of groups, definitions substituted, sums flattened.
    pub fn normalize(&mut self, t: &Term) -> Result<Term, Conflict> {
        self.normalize_at(t, 0)
    }

    fn normalize_at(&mut self, t: &Term, depth: usize) -> Result<Term, Conflict> {
        if depth > MAX_DEPTH {
            return Err(Conflict::Cyclic);
        }
        Ok(match t {
            Term::G(g) => {
                let r = self.find(*g);
                match self.groups[r.0 as usize].def.clone() {
                    Some(def) => self.normalize_at(&def, depth + 1)?,
                    None => Term::G(r),
                }
            }
            Term::Sum(items) => {
                let mut flat = Vec::new();
                for item in items {
                    match self.normalize_at(item, depth + 1)? {
                        Term::Sum(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                if flat.len() == 1 {
                    flat.pop().expect("one item")
                } else {
                    Term::Sum(flat)
                }
            }
            Term::Part(of, n) => {
                let of = self.normalize_at(of, depth + 1)?;
                simplify_part(of, *n)
            }
            Term::Ratio(of, r, rounding) => Term::Ratio(Box::new(self.normalize_at(of, depth + 1)?), *r, *rounding),
        })
    }

    fn mentions(&mut self, t: &Term, g: GroupId) -> bool {
        match t {
            Term::G(h) => self.find(*h) == g,
            Term::Sum(items) => items.iter().any(|i| self.mentions(i, g)),
            Term::Part(t, _) | Term::Ratio(t, _, _) => self.mentions(t, g),
        }
    }

    /// True when no free group occurs in the term.
    pub fn is_constant(&mut self, t: &Term) -> bool {
        match t {
            Term::G(g) => self.is_fixed(*g),
            Term::Sum(items) => items.iter().all(|i| self.is_constant(i)),
            Term::Part(t, _) | Term::Ratio(t, _, _) => self.is_constant(t),
        }
    }

    /// Makes every group `t` is made of fixed (a `slice` reads its input at one count): each
    /// free group is merged into a fixed one declared at `span` and recorded as pinned
    /// (warning W0306 names both).
    pub fn pin(&mut self, t: &Term, span: Span) -> Result<(), Conflict> {
        match self.normalize(t)? {
            Term::G(g) if self.is_fixed(g) => Ok(()),
            Term::G(g) => {
                let base = self.base_of(g);
                let fixed = self.fresh(base, true, span);
                let before = self.absorbed.len();
                self.unify(&Term::G(g), &Term::G(fixed))?;
                let pinned: Vec<_> = self.absorbed.drain(before..).collect();
                self.pinned.extend(pinned);
                Ok(())
            }
            Term::Sum(items) => items.iter().try_for_each(|i| self.pin(i, span)),
            Term::Part(inner, _) | Term::Ratio(inner, _, _) => self.pin(&inner, span),
        }
    }

    /// Makes two counts equal at every width.
    pub fn unify(&mut self, a: &Term, b: &Term) -> Result<(), Conflict> {
        let a = self.normalize(a)?;
        let b = self.normalize(b)?;
        if a == b {
            return Ok(());
        }
        let (ba, bb) = (self.base(&a), self.base(&b));
        if ba != bb {
            return Err(Conflict::Base { left: ba, right: bb });
        }
        match (a, b) {
            (Term::G(x), Term::G(y)) => self.merge(x, y),
            (Term::G(x), d) | (d, Term::G(x)) => self.define(x, d),
            _ => Err(Conflict::Derived),
        }
    }

    fn merge(&mut self, x: GroupId, y: GroupId) -> Result<(), Conflict> {
        let (gx, gy) = (self.groups[x.0 as usize].clone(), self.groups[y.0 as usize].clone());
        let (root, child) = if x.0 <= y.0 { (x, y) } else { (y, x) };
        let divisor = lcm(gx.divisor, gy.divisor);
        if divisor > 1 && gx.base % divisor != 0 {
            let origin = if gx.divisor > 1 { gy.origin } else { gx.origin };
            return Err(Conflict::NotDivisible { channels: gx.base, divisor, origin });
        }
        if gx.fixed != gy.fixed {
            let (fixed, free) = if gx.fixed { (&gx, &gy) } else { (&gy, &gx) };
            self.absorbed.push((fixed.base, fixed.origin, free.origin));
        }
        self.groups[child.0 as usize].parent = root.0;
        let r = &mut self.groups[root.0 as usize];
        r.fixed = gx.fixed || gy.fixed;
        r.divisor = divisor;
        Ok(())
    }

    fn define(&mut self, x: GroupId, d: Term) -> Result<(), Conflict> {
        if self.mentions(&d, x) {
            return Err(Conflict::Cyclic);
        }
        let g = self.groups[x.0 as usize].clone();
        if g.fixed {
            if self.is_constant(&d) {
                return Ok(());
            }
            let other_origin = self.term_origin(&d);
            return Err(Conflict::FixedForced { fixed: g.base, fixed_origin: g.origin, other_origin });
        }
        self.require_divisible(&d, g.divisor)?;
        self.groups[x.0 as usize].def = Some(d);
        Ok(())
    }

    /// Where the first group of a term was declared.
    pub fn term_origin(&mut self, t: &Term) -> Span {
        match t {
            Term::G(g) => self.origin(*g),
            Term::Sum(items) => items.first().map_or(Span::default(), |i| self.term_origin(i)),
            Term::Part(t, _) | Term::Ratio(t, _, _) => self.term_origin(t),
        }
    }

    /// Requires the count to be a multiple of `k` at every width.
    pub fn require_divisible(&mut self, t: &Term, k: u32) -> Result<(), Conflict> {
        if k <= 1 {
            return Ok(());
        }
        let t = self.normalize(t)?;
        match &t {
            Term::G(g) => {
                let i = g.0 as usize;
                let group = &mut self.groups[i];
                if !group.base.is_multiple_of(k) {
                    return Err(Conflict::NotDivisible { channels: group.base, divisor: k, origin: group.origin });
                }
                group.divisor = lcm(group.divisor, k);
                Ok(())
            }
            Term::Sum(items) => {
                let n = items.len() as u32;
                if items.iter().all(|i| *i == items[0]) && n.is_multiple_of(k) {
                    return Ok(());
                }
                for item in items {
                    self.require_divisible(item, k)?;
                }
                Ok(())
            }
            Term::Part(of, n) => self.require_divisible(of, n.saturating_mul(k)),
            Term::Ratio(..) => {
                if self.is_constant(&t) {
                    let v = self.base(&t);
                    if v.is_multiple_of(k) {
                        return Ok(());
                    }
                    let origin = self.term_origin(&t);
                    return Err(Conflict::NotDivisible { channels: v, divisor: k, origin });
                }
                Err(Conflict::DerivedDivisibility)
            }
        }
    }

    /// `part` of `parts` equal channel splits of `t`.
    pub fn part(&mut self, t: &Term, parts: u32) -> Result<Term, Conflict> {
        let t = self.normalize(t)?;
        let simplified = simplify_part(t.clone(), parts);
        if let Term::Part(..) = simplified {
            self.require_divisible(&t, parts)?;
        }
        Ok(simplified)
    }

    /// Records `group ≥ bound` (zero-padded shortcuts).
    pub fn at_least(&mut self, g: GroupId, bound: Term, span: Span) {
        self.at_least.push((g, bound, span));
    }
}

/// A split of `n` repeated copies of the same widths is one copy.
fn simplify_part(of: Term, parts: u32) -> Term {
    if let Term::Sum(items) = &of {
        let n = items.len();
        let p = parts as usize;
        if p > 0 && n % p == 0 {
            let period = n / p;
            if (period..n).all(|i| items[i] == items[i % period]) {
                return if period == 1 { items[0].clone() } else { Term::Sum(items[..period].to_vec()) };
            }
        }
    }
    Term::Part(Box::new(of), parts)
}

pub fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

pub fn lcm(a: u32, b: u32) -> u32 {
    if a == 0 || b == 0 {
        return a.max(b);
    }
    (a / gcd(a, b)).saturating_mul(b)
}
