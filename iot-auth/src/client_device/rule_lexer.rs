//! The tokens of a selection rule: `thingName:`, `OR`, `AND` and values, with their offsets.

use super::rule_error::{SelectionRuleError, SelectionRuleErrorKind, TokenKind};
use super::selection_rule::ThingNamePattern;

const SELECTOR: &str = "thingName:";

pub(crate) enum Token {
    Selector,
    UnknownSelector(String),
    Or,
    And,
    Value(ThingNamePattern),
    End,
}

impl Token {
    pub(crate) fn kind(&self) -> TokenKind {
        match self {
            Token::Selector => TokenKind::Selector,
            // A word followed by a colon: where no selector may stand, it reads as a value.
            Token::UnknownSelector(_) => TokenKind::Value,
            Token::Or => TokenKind::Or,
            Token::And => TokenKind::And,
            Token::Value(_) => TokenKind::Value,
            Token::End => TokenKind::End,
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r')
}

pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    /// The next token and the byte offset where it starts.
    pub(crate) fn next_token(&mut self) -> Result<(usize, Token), SelectionRuleError> {
        while let Some(c) = self.peek().filter(|c| is_space(*c)) {
            self.pos += c.len_utf8();
        }
        let start = self.pos;
        let Some(first) = self.peek() else {
            return Ok((start, Token::End));
        };
        if self
            .text
            .get(start..)
            .is_some_and(|rest| rest.starts_with(SELECTOR))
        {
            self.pos += SELECTOR.len();
            return Ok((start, Token::Selector));
        }
        if first == ':' {
            return Err(SelectionRuleError::at(
                start,
                SelectionRuleErrorKind::UnescapedColon,
            ));
        }
        if !(first == '*' || first == '\\' || is_name_char(first)) {
            return Err(SelectionRuleError::at(
                start,
                SelectionRuleErrorKind::UnexpectedCharacter(first),
            ));
        }
        let leading_star = first == '*';
        if leading_star {
            self.pos += 1;
        }
        let mut name = String::new();
        // Whether the run so far holds only unescaped name characters (a selector-like word).
        let mut plain = true;
        loop {
            match self.peek() {
                Some(c) if is_name_char(c) => {
                    name.push(c);
                    self.pos += 1;
                }
                Some('\\') => {
                    if self
                        .text
                        .get(self.pos + 1..)
                        .is_some_and(|r| r.starts_with(':'))
                    {
                        name.push(':');
                        plain = false;
                        self.pos += 2;
                    } else {
                        return Err(SelectionRuleError::at(
                            self.pos,
                            SelectionRuleErrorKind::BadEscape,
                        ));
                    }
                }
                _ => break,
            }
        }
        let trailing_star = !name.is_empty() && self.peek() == Some('*');
        if trailing_star {
            self.pos += 1;
        }
        // A value ends at whitespace, at the end, or (for a selector-like word) at its colon.
        match self.peek() {
            None => {}
            Some(c) if is_space(c) => {}
            Some(':') if plain && !leading_star && !trailing_star => {
                return Ok((start, Token::UnknownSelector(name)));
            }
            Some(':') => {
                return Err(SelectionRuleError::at(
                    self.pos,
                    SelectionRuleErrorKind::UnescapedColon,
                ));
            }
            Some(c) if c == '*' || c == '\\' || is_name_char(c) => {
                let at = if c == '*' {
                    self.pos
                } else {
                    self.pos.saturating_sub(1)
                };
                return Err(SelectionRuleError::at(
                    at,
                    SelectionRuleErrorKind::MisplacedWildcard,
                ));
            }
            Some(c) => {
                return Err(SelectionRuleError::at(
                    self.pos,
                    SelectionRuleErrorKind::UnexpectedCharacter(c),
                ));
            }
        }
        let pattern = match (leading_star, trailing_star) {
            (true, _) if name.is_empty() => ThingNamePattern::Any,
            (false, false) if name == "OR" => return Ok((start, Token::Or)),
            (false, false) if name == "AND" => return Ok((start, Token::And)),
            (false, false) => ThingNamePattern::Exact(name),
            (false, true) => ThingNamePattern::Prefix(name),
            (true, false) => ThingNamePattern::Suffix(name),
            (true, true) => ThingNamePattern::Infix(name),
        };
        Ok((start, Token::Value(pattern)))
    }
}
