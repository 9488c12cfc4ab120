//! The mutation corpus: zoo files and random edits of them (deletions, insertions of
//! tokens that break things, byte replacements, duplications, truncations). Shared by the
//! compiler's robustness tests and the language server's fuzz test.

use proptest::prelude::*;

/// Every file of `models/`, sorted by name.
pub fn zoo_sources() -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = std::fs::read_dir("models").unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[derive(Debug, Clone)]
pub enum Edit {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
    Duplicate(usize, usize),
    Truncate(usize),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let token = prop::sample::select(vec![
        b"(".to_vec(),
        b")".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"->".to_vec(),
        b" * 1000".to_vec(),
        b"in".to_vec(),
        b"0".to_vec(),
        b"99999999999".to_vec(),
        b"conv(".to_vec(),
        b"fixed(".to_vec(),
        b"ratio(in, 0.5)".to_vec(),
        b"+ in".to_vec(),
        b",".to_vec(),
        b"=".to_vec(),
        b"\n".to_vec(),
        b"#".to_vec(),
        b"stride=2".to_vec(),
        b"if".to_vec(),
        b"else".to_vec(),
        b".c".to_vec(),
        vec![0xff],
        b"split(1)".to_vec(),
        b"group_width=3".to_vec(),
        b"zeropad(1)".to_vec(),
        b"concat(in, in)".to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), token).prop_map(|(a, t)| Edit::Insert(a, t)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        (any::<usize>(), 1..80usize).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

pub fn apply(src: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut s = src.to_vec();
    for e in edits {
        let len = s.len().max(1);
        match e {
            Edit::Delete(a, n) => {
                let a = a % len;
                let b = (a + n).min(s.len());
                if a < b {
                    s.drain(a..b);
                }
            }
            Edit::Insert(a, t) => {
                let a = a % (s.len() + 1);
                s.splice(a..a, t.iter().copied());
            }
            Edit::Replace(a, b) => {
                if !s.is_empty() {
                    let a = a % s.len();
                    s[a] = *b;
                }
            }
            Edit::Duplicate(a, n) => {
                let a = a % len;
                let b = (a + n).min(s.len());
                if a < b {
                    let piece = s[a..b].to_vec();
                    s.splice(b..b, piece);
                }
            }
            Edit::Truncate(a) => s.truncate(a % len),
        }
    }
    s
}
