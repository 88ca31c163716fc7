//! Errors of selection-rule parsing: where, and what was wrong.

use std::fmt;

/// Why a selection rule was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selection rule, byte {position}: {kind}")]
pub struct SelectionRuleError {
    /// Byte offset in the rule where the problem starts (the rule's length for its end).
    pub position: usize,
    /// What was wrong.
    pub kind: SelectionRuleErrorKind,
}

impl SelectionRuleError {
    pub(crate) fn at(position: usize, kind: SelectionRuleErrorKind) -> Self {
        SelectionRuleError { position, kind }
    }
}

/// What was wrong with a selection rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionRuleErrorKind {
    /// Longer than [`MAX_SELECTION_RULE_BYTES`](super::MAX_SELECTION_RULE_BYTES).
    #[error("the rule has {len} bytes; at most 4096 are allowed")]
    TooLong {
        /// The rule's length in bytes.
        len: usize,
    },
    /// A character that no token may hold (thing names are ASCII letters, digits, `-`, `_`
    /// and escaped colons; a line feed is not whitespace here).
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
    /// A `:` in a value, which must be written `\:`.
    #[error("a colon in a thing name must be escaped as `\\:`")]
    UnescapedColon,
    /// A `\` not followed by `:`.
    #[error("a backslash may only escape a colon (`\\:`)")]
    BadEscape,
    /// A `*` elsewhere than at the start or the end of a value.
    #[error("`*` is allowed only at the start or the end of a value")]
    MisplacedWildcard,
    /// A selector other than `thingName:` (selectors are case-sensitive).
    #[error("unknown selector `{0}:`; the only selector is `thingName:`")]
    UnknownSelector(String),
    /// A clause must start here.
    #[error("expected `thingName:`, found {found}")]
    ExpectedSelector {
        /// What came instead.
        found: TokenKind,
    },
    /// A value must follow `thingName:`.
    #[error("expected a thing name after `thingName:`, found {found}")]
    ExpectedValue {
        /// What came instead.
        found: TokenKind,
    },
    /// A clause must be followed by `OR`, `AND` or the end of the rule.
    #[error("expected `OR`, `AND` or the end of the rule, found {found}")]
    ExpectedOperator {
        /// What came instead.
        found: TokenKind,
    },
}

/// The kinds of token of a selection rule, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `thingName:`.
    Selector,
    /// `OR`.
    Or,
    /// `AND`.
    And,
    /// A value (thing name pattern).
    Value,
    /// The end of the rule.
    End,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Selector => "`thingName:`",
            TokenKind::Or => "`OR`",
            TokenKind::And => "`AND`",
            TokenKind::Value => "a thing name",
            TokenKind::End => "the end of the rule",
        })
    }
}
