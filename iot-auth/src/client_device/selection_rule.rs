//! Selection rules: which things belong to a device group.
//!
//! The grammar is Greengrass's (`aws.greengrass.clientdevices.Auth`, format `2021-03-05`):
//!
//! ```text
//! rule   := and ( "OR" and )*
//! and    := clause ( "AND" clause )*
//! clause := "thingName:" value
//! value  := "*" | "*"? name "*"?
//! name   := ( ASCII letter | digit | "-" | "_" | "\:" )+
//! ```
//!
//! `AND` binds tighter than `OR`; there are no parentheses and no `NOT`. `thingName:`, `OR` and
//! `AND` are case-sensitive and `thingName:` is one token (no space before its colon). Spaces, tabs
//! and carriage returns may surround tokens (a line feed may not, as in Greengrass). A value is
//! an exact thing name, `prefix*`, `*suffix`, `*infix*` or `*` (every thing); a colon in a name
//! is written `\:`. The words `OR` and `AND` alone are keywords, never values. Rules longer than
//! [`MAX_SELECTION_RULE_BYTES`] are refused, which also bounds the number of clauses.
//!
//! AWS's documentation shows only a trailing `*` and `*` alone; the component accepts a leading
//! `*` as well since version 2.5.0, and so do we.

use std::fmt;
use std::str::FromStr;

use super::rule_error::{SelectionRuleError, SelectionRuleErrorKind};
use super::rule_lexer::{Lexer, Token};

/// The longest selection rule accepted, in bytes (a clause takes at least 12, so at most a few
/// hundred clauses).
pub const MAX_SELECTION_RULE_BYTES: usize = 4096;

/// A parsed selection rule: an `OR` of `AND`s of thing-name clauses.
///
/// ```
/// use iot_auth::client_device::SelectionRule;
///
/// let rule: SelectionRule = "thingName: car-* AND thingName: *-eu OR thingName: depot".parse().unwrap();
/// assert!(rule.matches("car-7-eu"));
/// assert!(rule.matches("depot"));
/// assert!(!rule.matches("car-7-us"));
/// assert_eq!(rule.to_string(), "thingName: car-* AND thingName: *-eu OR thingName: depot");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SelectionRule {
    /// Alternatives (joined by `OR`), each a non-empty conjunction (joined by `AND`).
    any_of: Vec<Vec<ThingNamePattern>>,
}

/// The value of one `thingName:` clause.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ThingNamePattern {
    /// `*`: every thing.
    Any,
    /// `name`: exactly this thing.
    Exact(String),
    /// `name*`: things whose name starts with this.
    Prefix(String),
    /// `*name`: things whose name ends with this.
    Suffix(String),
    /// `*name*`: things whose name contains this.
    Infix(String),
}

impl ThingNamePattern {
    fn matches(&self, thing_name: &str) -> bool {
        match self {
            ThingNamePattern::Any => true,
            ThingNamePattern::Exact(name) => thing_name == name,
            ThingNamePattern::Prefix(start) => thing_name.starts_with(start.as_str()),
            ThingNamePattern::Suffix(end) => thing_name.ends_with(end.as_str()),
            ThingNamePattern::Infix(part) => thing_name.contains(part.as_str()),
        }
    }
}

impl SelectionRule {
    /// Parses a selection rule (see the module documentation for the grammar).
    ///
    /// ```
    /// use iot_auth::client_device::{SelectionRule, SelectionRuleErrorKind};
    /// let err = SelectionRule::parse("thingName: a OR thingType: b").unwrap_err();
    /// assert_eq!(err.position, 16);
    /// assert_eq!(err.kind, SelectionRuleErrorKind::UnknownSelector("thingType".into()));
    /// ```
    pub fn parse(text: &str) -> Result<SelectionRule, SelectionRuleError> {
        if text.len() > MAX_SELECTION_RULE_BYTES {
            return Err(SelectionRuleError {
                position: MAX_SELECTION_RULE_BYTES,
                kind: SelectionRuleErrorKind::TooLong { len: text.len() },
            });
        }
        let mut lexer = Lexer::new(text);
        let mut any_of = Vec::new();
        let mut all_of = Vec::new();
        loop {
            let (at, token) = lexer.next_token()?;
            match token {
                Token::Selector => {}
                Token::UnknownSelector(name) => {
                    return Err(SelectionRuleError::at(
                        at,
                        SelectionRuleErrorKind::UnknownSelector(name),
                    ));
                }
                other => {
                    return Err(SelectionRuleError::at(
                        at,
                        SelectionRuleErrorKind::ExpectedSelector {
                            found: other.kind(),
                        },
                    ));
                }
            }
            let (at, token) = lexer.next_token()?;
            match token {
                Token::Value(pattern) => all_of.push(pattern),
                Token::UnknownSelector(name) => {
                    return Err(SelectionRuleError::at(
                        at + name.len(),
                        SelectionRuleErrorKind::UnescapedColon,
                    ));
                }
                other => {
                    return Err(SelectionRuleError::at(
                        at,
                        SelectionRuleErrorKind::ExpectedValue {
                            found: other.kind(),
                        },
                    ));
                }
            }
            let (at, token) = lexer.next_token()?;
            match token {
                Token::And => {}
                Token::Or => any_of.push(std::mem::take(&mut all_of)),
                Token::End => {
                    any_of.push(all_of);
                    return Ok(SelectionRule { any_of });
                }
                other => {
                    return Err(SelectionRuleError::at(
                        at,
                        SelectionRuleErrorKind::ExpectedOperator {
                            found: other.kind(),
                        },
                    ));
                }
            }
        }
    }

    /// Whether the thing named `thing_name` belongs to the group this rule selects. Thing names
    /// are compared case-sensitively.
    pub fn matches(&self, thing_name: &str) -> bool {
        self.any_of
            .iter()
            .any(|all_of| all_of.iter().all(|p| p.matches(thing_name)))
    }
}

impl FromStr for SelectionRule {
    type Err = SelectionRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SelectionRule::parse(text)
    }
}

/// The canonical text: one space around each keyword, colons escaped. It parses back to an
/// equal rule.
impl fmt::Display for SelectionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, all_of) in self.any_of.iter().enumerate() {
            if i > 0 {
                f.write_str(" OR ")?;
            }
            for (j, pattern) in all_of.iter().enumerate() {
                if j > 0 {
                    f.write_str(" AND ")?;
                }
                f.write_str("thingName: ")?;
                let (lead, name, trail) = match pattern {
                    ThingNamePattern::Any => ("*", "", ""),
                    ThingNamePattern::Exact(n) => ("", n.as_str(), ""),
                    ThingNamePattern::Prefix(n) => ("", n.as_str(), "*"),
                    ThingNamePattern::Suffix(n) => ("*", n.as_str(), ""),
                    ThingNamePattern::Infix(n) => ("*", n.as_str(), "*"),
                };
                f.write_str(lead)?;
                for part in name.split_inclusive(':') {
                    match part.strip_suffix(':') {
                        Some(before) => write!(f, "{before}\\:")?,
                        None => f.write_str(part)?,
                    }
                }
                f.write_str(trail)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::client_device::TokenKind;
    use proptest::prelude::*;

    fn rule(text: &str) -> SelectionRule {
        SelectionRule::parse(text).unwrap()
    }

    fn err(text: &str) -> (usize, SelectionRuleErrorKind) {
        let e = SelectionRule::parse(text).unwrap_err();
        (e.position, e.kind)
    }

    #[test]
    fn documented_examples() {
        let r = rule("thingName: MyClientDevice1 OR thingName: MyClientDevice2");
        assert!(r.matches("MyClientDevice1"));
        assert!(r.matches("MyClientDevice2"));
        assert!(!r.matches("MyClientDevice3"));
        let r = rule("thingName: MyClientDevice*");
        assert!(r.matches("MyClientDevice"));
        assert!(r.matches("MyClientDevice42"));
        assert!(!r.matches("myclientdevice42"));
        assert!(!r.matches("XMyClientDevice"));
        let r = rule("thingName: *");
        assert!(r.matches("anything"));
        assert!(r.matches(""));
        let r = rule(r"thingName: MyTeam\:ClientDevice1");
        assert!(r.matches("MyTeam:ClientDevice1"));
        assert!(!r.matches(r"MyTeam\:ClientDevice1"));
    }

    #[test]
    fn leading_and_both_wildcards() {
        let r = rule("thingName: *-eu");
        assert!(r.matches("car-eu"));
        assert!(!r.matches("car-eu2"));
        let r = rule("thingName: *car*");
        assert!(r.matches("car"));
        assert!(r.matches("a-car-b"));
        assert!(!r.matches("ca-r"));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // a OR (b* AND *c)
        let r = rule("thingName: a OR thingName: b* AND thingName: *c");
        assert!(r.matches("a"));
        assert!(r.matches("bxc"));
        assert!(!r.matches("bx"));
        // (a* AND *z) OR c
        let r = rule("thingName: a* AND thingName: *z OR thingName: c");
        assert!(r.matches("c"));
        assert!(r.matches("az"));
        assert!(!r.matches("a"));
        // Were OR tighter, (a* AND (*z OR c)) would not match "c".
        let r = rule("thingName: x AND thingName: y");
        assert!(!r.matches("x"));
    }

    #[test]
    fn whitespace() {
        assert_eq!(rule("thingName:a"), rule("thingName: a"));
        assert_eq!(
            rule(" \tthingName:\ra   OR\tthingName: b \r"),
            rule("thingName: a OR thingName: b")
        );
        assert_eq!(
            err("thingName: a\nOR thingName: b"),
            (12, SelectionRuleErrorKind::UnexpectedCharacter('\n'))
        );
    }

    #[test]
    fn keywords_and_selectors_are_case_sensitive() {
        assert_eq!(
            err("ThingName: a"),
            (
                0,
                SelectionRuleErrorKind::UnknownSelector("ThingName".into())
            )
        );
        assert_eq!(
            err("thingName : a"),
            (
                0,
                SelectionRuleErrorKind::ExpectedSelector {
                    found: TokenKind::Value
                }
            )
        );
        // `or` is a thing name, so a second value follows the first.
        assert_eq!(
            err("thingName: a or thingName: b"),
            (
                13,
                SelectionRuleErrorKind::ExpectedOperator {
                    found: TokenKind::Value
                }
            )
        );
        // Words that merely start with a keyword are names.
        let r = rule("thingName: ORDER OR thingName: ANDY OR thingName: OR*");
        assert!(r.matches("ORDER") && r.matches("ANDY") && r.matches("ORx"));
        assert_eq!(
            err("thingName: OR"),
            (
                11,
                SelectionRuleErrorKind::ExpectedValue {
                    found: TokenKind::Or
                }
            )
        );
    }

    #[test]
    fn errors_name_position_and_cause() {
        assert_eq!(
            err(""),
            (
                0,
                SelectionRuleErrorKind::ExpectedSelector {
                    found: TokenKind::End
                }
            )
        );
        assert_eq!(
            err("thingName:"),
            (
                10,
                SelectionRuleErrorKind::ExpectedValue {
                    found: TokenKind::End
                }
            )
        );
        assert_eq!(
            err("thingName: a OR"),
            (
                15,
                SelectionRuleErrorKind::ExpectedSelector {
                    found: TokenKind::End
                }
            )
        );
        assert_eq!(
            err("thingName: a AND AND thingName: b"),
            (
                17,
                SelectionRuleErrorKind::ExpectedSelector {
                    found: TokenKind::And
                }
            )
        );
        assert_eq!(
            err("thingName: thing*2"),
            (16, SelectionRuleErrorKind::MisplacedWildcard)
        );
        assert_eq!(
            err("thingName: **"),
            (12, SelectionRuleErrorKind::MisplacedWildcard)
        );
        assert_eq!(
            err("thingName: a*b*"),
            (12, SelectionRuleErrorKind::MisplacedWildcard)
        );
        assert_eq!(
            err(r"thingName: a\b"),
            (12, SelectionRuleErrorKind::BadEscape)
        );
        assert_eq!(
            err("thingName: a:b"),
            (12, SelectionRuleErrorKind::UnescapedColon)
        );
        assert_eq!(
            err(r"thingName: a\:b*:"),
            (16, SelectionRuleErrorKind::UnescapedColon)
        );
        assert_eq!(
            err("thingName: :"),
            (11, SelectionRuleErrorKind::UnescapedColon)
        );
        assert_eq!(
            err("thingName: (a)"),
            (11, SelectionRuleErrorKind::UnexpectedCharacter('('))
        );
        assert_eq!(
            err("thingName: é"),
            (11, SelectionRuleErrorKind::UnexpectedCharacter('é'))
        );
        assert_eq!(
            err("thingName: a thingName: b"),
            (
                13,
                SelectionRuleErrorKind::ExpectedOperator {
                    found: TokenKind::Selector
                }
            )
        );
        let long = format!("thingName: {}", "a".repeat(MAX_SELECTION_RULE_BYTES));
        assert_eq!(
            err(&long),
            (
                MAX_SELECTION_RULE_BYTES,
                SelectionRuleErrorKind::TooLong {
                    len: MAX_SELECTION_RULE_BYTES + 11
                }
            )
        );
        let e = SelectionRule::parse("thingName: a:b").unwrap_err();
        assert_eq!(
            e.to_string(),
            r"selection rule, byte 12: a colon in a thing name must be escaped as `\:`"
        );
    }

    #[test]
    fn display_is_canonical() {
        let r = rule(r"thingName:a\:b*   AND thingName:*  OR thingName:*x\:");
        assert_eq!(
            r.to_string(),
            r"thingName: a\:b* AND thingName: * OR thingName: *x\:"
        );
    }

    fn rule_text() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just("*".to_owned()),
            r"\*?([a-zA-Z0-9_-]|\\:){1,6}\*?",
            Just("OR*".to_owned()),
            Just("*AND".to_owned()),
        ]
        .prop_filter("a bare keyword is not a value", |v| v != "OR" && v != "AND");
        let clause = ("[ \t\r]{0,2}", value).prop_map(|(sp, v)| format!("thingName:{sp}{v}"));
        proptest::collection::vec((clause, prop_oneof![Just(" OR "), Just("\tAND ")]), 1..5)
            .prop_map(|parts| {
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (c, op))| if i == 0 { c } else { format!("{op}{c}") })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,60}", name in ".{0,20}") {
            if let Ok(r) = SelectionRule::parse(&text) {
                let _ = r.matches(&name);
                prop_assert_eq!(SelectionRule::parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn display_round_trips(text in rule_text(), name in "[a-c:*-]{0,8}") {
            let r = SelectionRule::parse(&text).unwrap();
            let again = SelectionRule::parse(&r.to_string()).unwrap();
            prop_assert_eq!(again.matches(&name), r.matches(&name));
            prop_assert_eq!(again, r);
        }

        #[test]
        fn near_misses_never_panic(
            text in rule_text(),
            at in any::<prop::sample::Index>(),
            insert in r"[ *:\\\na(]|OR|AND|thingName:|é",
            name in "[a-c:*-]{0,8}",
        ) {
            let mut chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            chars.splice(i..i, insert.chars());
            let text: String = chars.into_iter().collect();
            match SelectionRule::parse(&text) {
                Ok(r) => {
                    let _ = r.matches(&name);
                    prop_assert_eq!(SelectionRule::parse(&r.to_string()), Ok(r));
                }
                Err(e) => prop_assert!(e.position <= text.len()),
            }
        }

        #[test]
        fn grammar_shaped_text_parses(text in rule_text()) {
            prop_assert!(SelectionRule::parse(&text).is_ok(), "{:?}", text);
        }
    }
}
