//! `Condition` blocks: IAM operators over the request's condition keys.

use std::net::IpAddr;

use serde_json::Value;

use super::PolicyError;
use super::context::{RequestContext, Variable};
use super::pattern::Pattern;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    Null,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        use Operator::*;
        Some(match name {
            "StringEquals" | "ArnEquals" => StringEquals,
            "StringNotEquals" | "ArnNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" | "ArnLike" => StringLike,
            "StringNotLike" | "ArnNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "Bool" => Bool,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators hold when the key is absent, and when no value matches.
    fn negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::NumericNotEquals
                | Operator::NotIpAddress
        )
    }

    /// Whether one context value matches one policy value (for negated operators: the positive
    /// test, negated by the caller).
    fn test(self, actual: &str, expected: &Pattern, ctx: &RequestContext) -> bool {
        use Operator::*;
        match self {
            StringEquals | StringNotEquals => actual == expected.expand_text(ctx),
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                actual.eq_ignore_ascii_case(&expected.expand_text(ctx))
            }
            StringLike | StringNotLike => expected.matches(actual, ctx, false),
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => {
                let (Ok(a), Ok(b)) = (
                    actual.trim().parse::<f64>(),
                    expected.expand_text(ctx).trim().parse::<f64>(),
                ) else {
                    return false;
                };
                match self {
                    NumericLessThan => a < b,
                    NumericLessThanEquals => a <= b,
                    NumericGreaterThan => a > b,
                    NumericGreaterThanEquals => a >= b,
                    _ => a == b,
                }
            }
            Bool => actual.eq_ignore_ascii_case(&expected.expand_text(ctx)),
            IpAddress | NotIpAddress => cidr_contains(&expected.expand_text(ctx), actual),
            Null => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetMode {
    Single,
    AnyValue,
    AllValues,
}

/// One `operator: { key: values }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    operator: Operator,
    mode: SetMode,
    if_exists: bool,
    key: Variable,
    values: Vec<Pattern>,
}

/// All clauses of a statement's `Condition` block; every one must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Conditions {
    clauses: Vec<Clause>,
}

impl Conditions {
    pub(crate) fn parse(value: &Value, path: &str) -> Result<Conditions, PolicyError> {
        let Value::Object(ops) = value else {
            return Err(PolicyError::invalid(path, "must be an object"));
        };
        let mut clauses = Vec::new();
        for (op_text, keys) in ops {
            let op_path = format!("{path}.{op_text}");
            let (mode, rest) = if let Some(r) = op_text.strip_prefix("ForAnyValue:") {
                (SetMode::AnyValue, r)
            } else if let Some(r) = op_text.strip_prefix("ForAllValues:") {
                (SetMode::AllValues, r)
            } else {
                (SetMode::Single, op_text.as_str())
            };
            let (if_exists, base) = match rest.strip_suffix("IfExists") {
                Some(base) => (true, base),
                None => (false, rest),
            };
            let operator = Operator::parse(base).ok_or_else(|| {
                PolicyError::invalid(&op_path, "is not a condition operator we know")
            })?;
            let Value::Object(keys) = keys else {
                return Err(PolicyError::invalid(&op_path, "must be an object of keys"));
            };
            for (key, expected) in keys {
                let key_path = format!("{op_path}.{key}");
                let texts = scalar_list(expected).ok_or_else(|| {
                    PolicyError::invalid(&key_path, "must be a string, number, boolean or list")
                })?;
                let like = matches!(operator, Operator::StringLike | Operator::StringNotLike);
                clauses.push(Clause {
                    operator,
                    mode,
                    if_exists,
                    key: Variable::parse(key),
                    values: texts.iter().map(|t| Pattern::new(t, true, like)).collect(),
                });
            }
        }
        Ok(Conditions { clauses })
    }

    pub(crate) fn holds(&self, ctx: &RequestContext) -> bool {
        self.clauses.iter().all(|clause| clause.holds(ctx))
    }
}

impl Clause {
    fn holds(&self, ctx: &RequestContext) -> bool {
        let actual = self.key.values(ctx).filter(|v| !v.is_empty());
        if self.operator == Operator::Null {
            let want_absent = self
                .values
                .iter()
                .any(|v| v.source().eq_ignore_ascii_case("true"));
            return actual.is_none() == want_absent;
        }
        let Some(actual) = actual else {
            return match self.mode {
                SetMode::AllValues => true,
                SetMode::AnyValue => false,
                SetMode::Single => self.if_exists || self.operator.negated(),
            };
        };
        let matches_one = |value: &str| {
            let positive = self
                .values
                .iter()
                .any(|expected| self.operator.test(value, expected, ctx));
            positive != self.operator.negated()
        };
        match self.mode {
            SetMode::AllValues => actual.iter().all(|v| matches_one(v)),
            SetMode::AnyValue | SetMode::Single => actual.iter().any(|v| matches_one(v)),
        }
    }
}

fn scalar_list(value: &Value) -> Option<Vec<String>> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

/// Whether `cidr` (`10.0.0.0/8`, `::1/128`, or a bare address) contains the address `ip`.
fn cidr_contains(cidr: &str, ip: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((net, bits)) => (net, bits.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let (Ok(net), Ok(ip)) = (net.trim().parse::<IpAddr>(), ip.trim().parse::<IpAddr>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(
            u128::from(u32::from(n)) << 96,
            u128::from(u32::from(a)) << 96,
            bits.unwrap_or(32),
            32,
        ),
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            prefix_eq(u128::from(n), u128::from(a), bits.unwrap_or(128), 128)
        }
        _ => false,
    }
}

fn prefix_eq(net: u128, addr: u128, bits: u32, width: u32) -> bool {
    if bits > width {
        return false;
    }
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    net & mask == addr & mask
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cidr() {
        assert!(cidr_contains("10.0.0.0/8", "10.1.2.3"));
        assert!(!cidr_contains("10.0.0.0/8", "11.1.2.3"));
        assert!(cidr_contains("127.0.0.1", "127.0.0.1"));
        assert!(cidr_contains("0.0.0.0/0", "8.8.8.8"));
        assert!(cidr_contains("::1/128", "::1"));
        assert!(!cidr_contains("::1/128", "127.0.0.1"));
        assert!(!cidr_contains("10.0.0.0/40", "10.0.0.1"));
    }
}
