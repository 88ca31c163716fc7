//! IAM-style wildcard patterns with `${…}` policy variables: `*` matches any run of characters
//! (including `/`), `?` exactly one; `+` and `#` are ordinary characters.

use super::context::{RequestContext, Variable};

/// One glob element after variables are expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glob {
    Char(char),
    Star,
    One,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Glob(Glob),
    /// `${name}`: the parsed variable and its source text (kept literally when unresolvable).
    Var(Variable, String),
}

/// A compiled resource, action or condition-value pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    source: String,
    pieces: Vec<Piece>,
    /// The globs, when the pattern has no variables (the common case), so nothing is expanded.
    fixed: Option<Vec<Glob>>,
}

impl Pattern {
    /// Compiles `source`. With `variables`, `${…}` is expanded at evaluation; with `wildcards`, `*`
    /// and `?` are wildcards.
    pub(crate) fn new(source: &str, variables: bool, wildcards: bool) -> Pattern {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(c) = rest.chars().next() {
            if variables
                && rest.starts_with("${")
                && let Some(end) = rest.find('}')
            {
                let inner = rest.get(2..end).unwrap_or_default();
                let text = rest.get(..=end).unwrap_or_default();
                match inner {
                    "*" => pieces.push(Piece::Glob(Glob::Char('*'))),
                    "?" => pieces.push(Piece::Glob(Glob::Char('?'))),
                    "$" => pieces.push(Piece::Glob(Glob::Char('$'))),
                    _ => pieces.push(Piece::Var(Variable::parse(inner), text.to_owned())),
                }
                rest = rest.get(end + 1..).unwrap_or_default();
                continue;
            }
            let glob = match c {
                '*' if wildcards => Glob::Star,
                '?' if wildcards => Glob::One,
                c => Glob::Char(c),
            };
            pieces.push(Piece::Glob(glob));
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
        let fixed = pieces
            .iter()
            .map(|p| match p {
                Piece::Glob(g) => Some(*g),
                Piece::Var(..) => None,
            })
            .collect::<Option<Vec<Glob>>>();
        Pattern {
            source: source.to_owned(),
            pieces,
            fixed,
        }
    }

    /// The pattern as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether `target` matches, expanding variables from `ctx`; `fold_case` compares ASCII letters
    /// case-insensitively (actions, `…IgnoreCase` operators).
    pub(crate) fn matches(&self, target: &str, ctx: &RequestContext, fold_case: bool) -> bool {
        match &self.fixed {
            Some(globs) => glob_match(globs, target, fold_case),
            None => glob_match(&self.expand(ctx), target, fold_case),
        }
    }

    /// The text with variables substituted (for `StringEquals`-style comparisons).
    pub(crate) fn expand_text(&self, ctx: &RequestContext) -> String {
        let mut out = String::with_capacity(self.source.len());
        for piece in &self.pieces {
            match piece {
                Piece::Glob(Glob::Char(c)) => out.push(*c),
                Piece::Glob(Glob::Star) => out.push('*'),
                Piece::Glob(Glob::One) => out.push('?'),
                Piece::Var(var, text) => match var.resolve_single(ctx) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(text),
                },
            }
        }
        out
    }

    fn expand(&self, ctx: &RequestContext) -> Vec<Glob> {
        let mut out = Vec::with_capacity(self.source.len());
        for piece in &self.pieces {
            match piece {
                Piece::Glob(g) => out.push(*g),
                Piece::Var(var, text) => {
                    // A resolved value is literal text; so is the `${…}` of an unresolvable one.
                    let value = var.resolve_single(ctx);
                    out.extend(value.as_deref().unwrap_or(text).chars().map(Glob::Char));
                }
            }
        }
        out
    }
}

/// Glob matching with `*` and `?`, linear-time backtracking to the last `*`.
fn glob_match(pattern: &[Glob], target: &str, fold_case: bool) -> bool {
    let text: Vec<char> = target.chars().collect();
    let same = |a: char, b: char| {
        if fold_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0usize, 0usize);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match (pattern.get(p), text.get(t)) {
            (Some(Glob::Star), _) => {
                resume = Some((p, t));
                p += 1;
            }
            (Some(Glob::One), Some(_)) => {
                p += 1;
                t += 1;
            }
            (Some(Glob::Char(a)), Some(b)) if same(*a, *b) => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((star, from)) => {
                    p = star + 1;
                    t = from + 1;
                    resume = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|g| *g == Glob::Star))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn m(pattern: &str, target: &str) -> bool {
        Pattern::new(pattern, true, true).matches(target, &RequestContext::default(), false)
    }

    #[test]
    fn wildcards() {
        assert!(m("a/*", "a/b/c"));
        assert!(m("a/*", "a/"));
        assert!(!m("a/*", "a"));
        assert!(m("*", ""));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*b*b*", "xbybz"));
        assert!(!m("*b*b*", "xbyz"));
        assert!(m("a/#", "a/#"));
        assert!(!m("a/#", "a/b"));
        assert!(m("a/+/c", "a/+/c"));
        assert!(!m("a/+/c", "a/b/c"));
        assert!(m("${*}", "*"));
        assert!(!m("${*}", "x"));
        assert!(m("x${?}${$}", "x?$"));
    }

    #[test]
    fn variables() {
        let ctx = RequestContext::for_client("car-1");
        let p = Pattern::new("client/${iot:ClientId}", true, true);
        assert!(p.matches("client/car-1", &ctx, false));
        assert!(!p.matches("client/car-2", &ctx, false));
        // Unresolvable: stays literal.
        let p = Pattern::new("t/${iot:Connection.Thing.ThingName}", true, true);
        assert!(!p.matches("t/car-1", &ctx, false));
        assert!(p.matches("t/${iot:Connection.Thing.ThingName}", &ctx, false));
        // A value with a wildcard character is unusable.
        let ctx = RequestContext::for_client("car*");
        let p = Pattern::new("client/${iot:ClientId}", true, true);
        assert!(!p.matches("client/car-1", &ctx, false));
        assert!(!p.matches("client/car*", &ctx, false));
    }
}
