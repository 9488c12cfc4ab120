//! A stable text form of a network for snapshots and `slimc space`'s human output.

use std::fmt::Write;

use super::{Network, Op, Section, SpaceEntry, Width};

/// A width as text: `d3`, `1000`, `d1+d2`, `d4/2`, `ratio(d5, 0.25, floor)`.
pub fn width(w: &Width) -> String {
    match w {
        Width::Dim(i) => format!("d{i}"),
        Width::Fixed(n) => n.to_string(),
        Width::Sum(items) => items.iter().map(width).collect::<Vec<_>>().join("+"),
        Width::Part { of, parts } => match **of {
            Width::Sum(_) => format!("({})/{parts}", width(of)),
            _ => format!("{}/{parts}", width(of)),
        },
        Width::Ratio { of, ratio, rounding } => format!("ratio({}, {ratio}, {rounding})", width(of)),
    }
}

pub fn section(s: Section) -> String {
    match s {
        Section::Input => "input".into(),
        Section::Stem => "stem".into(),
        Section::Stage(i) => format!("stage{i}"),
        Section::Head => "head".into(),
    }
}

/// The channel space as nested text: `[16, [16, 16], [32, 32]]`.
pub fn channel_space(entries: &[SpaceEntry]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|e| match e {
            SpaceEntry::Dim(b) => b.to_string(),
            SpaceEntry::Stage(v) => format!("[{}]", v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Dimensions, then layers with their width terms and full-width shapes.
pub fn dump(net: &Network) -> String {
    let mut s = String::new();
    let [c, h, w] = net.input;
    let _ = writeln!(s, "network {} input {c}x{h}x{w} rounding {}", net.name, net.rounding);
    let _ = writeln!(s, "search_dim {}", net.space.search_dim());
    let _ = writeln!(s, "channel_space {}", channel_space(&net.space.channel_space()));
    for (i, d) in net.space.dims.iter().enumerate() {
        let bounds: Vec<String> = d.at_least.iter().map(width).collect();
        let names: Vec<&str> = d.layers.iter().map(|l| net.layers[*l].name.as_str()).collect();
        let _ = write!(s, "d{i}: base {} {} divisor {}", d.base, section(d.section), d.divisor);
        if !bounds.is_empty() {
            let _ = write!(s, " at_least {}", bounds.join(","));
        }
        let _ = writeln!(s, " sets {}", names.join(" "));
    }
    for (_, l) in net.layers.iter() {
        let ins: Vec<String> = l.inputs.iter().map(|i| net.layers[*i].name.clone()).collect();
        let extra = match &l.op {
            Op::Conv { kernel, stride, groups, .. } => format!(" k{} s{} {:?}", kernel[0], stride[0], groups),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "{} = {}{}({}) -> {} [{}] {}x{}",
            l.name,
            l.op.kind(),
            extra,
            ins.join(", "),
            width(&l.width),
            l.channels,
            l.hw[0],
            l.hw[1]
        );
    }
    s
}
