//! Python expressions laid out as ruff's formatter (Black's style) lays them out, so that
//! `ruff format` leaves an emitted module unchanged: a line that fits in 88 columns stays
//! whole; a call that does not puts its arguments on one indented line, or one per line
//! when they do not fit either; a list or tuple that does not fit puts one element per line.

/// The line length of ruff's and Black's default style.
const WIDTH: usize = 88;

pub enum Py {
    /// Code that is never split.
    Atom(String),
    /// `callee(args)`.
    Call(String, Vec<Py>),
    List(Vec<Py>),
    Tuple(Vec<Py>),
}

pub fn atom(s: impl Into<String>) -> Py {
    Py::Atom(s.into())
}

pub fn call(callee: impl Into<String>, args: Vec<Py>) -> Py {
    Py::Call(callee.into(), args)
}

impl Py {
    /// The expression on one line.
    pub fn flat(&self) -> String {
        let join = |items: &[Py]| items.iter().map(Py::flat).collect::<Vec<_>>().join(", ");
        match self {
            Py::Atom(s) => s.clone(),
            Py::Call(callee, args) => format!("{callee}({})", join(args)),
            Py::List(items) => format!("[{}]", join(items)),
            Py::Tuple(items) if items.len() == 1 => format!("({},)", items[0].flat()),
            Py::Tuple(items) => format!("({})", join(items)),
        }
    }

    /// The lines of `prefix` + the expression + `suffix` at `indent` columns, each ending in
    /// a newline.
    pub fn lines(&self, indent: usize, prefix: &str, suffix: &str) -> String {
        let pad = " ".repeat(indent);
        let flat = format!("{pad}{prefix}{}{suffix}", self.flat());
        if flat.chars().count() <= WIDTH {
            return flat + "\n";
        }
        let (open, close, items) = match self {
            Py::Atom(_) => return flat + "\n",
            Py::Call(callee, args) => (format!("{callee}("), ")", args),
            Py::List(items) => ("[".to_string(), "]", items),
            Py::Tuple(items) => ("(".to_string(), ")", items),
        };
        let mut out = format!("{pad}{prefix}{open}\n");
        let inner = indent + 4;
        if let Py::Call(_, args) = self {
            let body = args.iter().map(Py::flat).collect::<Vec<_>>().join(", ");
            if args.len() == 1 {
                out += &args[0].lines(inner, "", "");
                return out + &format!("{pad}{close}{suffix}\n");
            }
            if inner + body.chars().count() <= WIDTH {
                return out + &format!("{}{body}\n{pad}{close}{suffix}\n", " ".repeat(inner));
            }
        }
        for item in items {
            out += &item.lines(inner, "", ",");
        }
        out + &format!("{pad}{close}{suffix}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_black_does() {
        let short = call("f", vec![atom("a"), atom("b")]);
        assert_eq!(short.lines(4, "y = ", ""), "    y = f(a, b)\n");
        let long: Vec<Py> = (0..12).map(|i| atom(format!("argument{i}"))).collect();
        let args = call("F.interpolate", long.into_iter().take(5).collect());
        assert_eq!(
            args.lines(8, "out_upsample1 = ", ""),
            "        out_upsample1 = F.interpolate(\n            argument0, argument1, argument2, argument3, argument4\n        )\n"
        );
        let list = Py::List((0..30).map(|i| atom(i.to_string())).collect());
        let one = call("Levels", vec![list]);
        let text = one.lines(16, "", ",");
        assert!(
            text.starts_with("                Levels(\n                    [\n                        0,\n"),
            "{text}"
        );
        assert!(text.ends_with("                    ]\n                ),\n"), "{text}");
    }
}
