//! Parsing a policy document's JSON into compiled statements.

use serde_json::{Map, Value};

use super::PolicyError;
use super::condition::Conditions;
use super::pattern::Pattern;

/// The longest document AWS accepts, counted without whitespace.
pub const MAX_POLICY_CHARS: usize = 2048;

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The statement grants.
    Allow,
    /// The statement forbids, overriding every grant.
    Deny,
}

/// Which of `Action`/`NotAction` (or `Resource`/`NotResource`) a statement used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatternList {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<Pattern>,
}

/// One compiled statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    pub(crate) actions: PatternList,
    pub(crate) resources: PatternList,
    pub(crate) conditions: Conditions,
}

pub(crate) fn parse_document(json: &str) -> Result<Vec<Statement>, PolicyError> {
    let chars = json.chars().filter(|c| !c.is_whitespace()).count();
    if chars > MAX_POLICY_CHARS {
        return Err(PolicyError::TooLong { chars });
    }
    let value: Value = serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
    let Value::Object(doc) = value else {
        return Err(PolicyError::invalid("document", "must be a JSON object"));
    };
    for key in doc.keys() {
        if !matches!(key.as_str(), "Version" | "Statement" | "Id") {
            return Err(PolicyError::invalid(key, "is not a policy document field"));
        }
    }
    match doc.get("Version") {
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
        Some(_) => {
            return Err(PolicyError::invalid("Version", "must be \"2012-10-17\""));
        }
        None => return Err(PolicyError::invalid("Version", "is missing")),
    }
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
        Some(Value::Array(_)) => {
            return Err(PolicyError::invalid("Statement", "must not be empty"));
        }
        Some(one @ Value::Object(_)) => vec![one],
        Some(_) => {
            return Err(PolicyError::invalid(
                "Statement",
                "must be an object or a list of objects",
            ));
        }
        None => return Err(PolicyError::invalid("Statement", "is missing")),
    };
    statements
        .into_iter()
        .enumerate()
        .map(|(i, s)| parse_statement(s, &format!("Statement[{i}]")))
        .collect()
}

fn parse_statement(value: &Value, path: &str) -> Result<Statement, PolicyError> {
    let Value::Object(st) = value else {
        return Err(PolicyError::invalid(path, "must be an object"));
    };
    for key in st.keys() {
        if !matches!(
            key.as_str(),
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition"
        ) {
            return Err(PolicyError::invalid(
                &format!("{path}.{key}"),
                "is not a statement field",
            ));
        }
    }
    let effect = match st.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(_) => {
            return Err(PolicyError::invalid(
                &format!("{path}.Effect"),
                "must be \"Allow\" or \"Deny\"",
            ));
        }
        None => {
            return Err(PolicyError::invalid(
                &format!("{path}.Effect"),
                "is missing",
            ));
        }
    };
    let actions = pattern_list(st, path, "Action", "NotAction", false)?;
    for pattern in &actions.patterns {
        let text = pattern.source();
        if text != "*" && !text.contains(':') {
            return Err(PolicyError::invalid(
                &format!("{path}.Action"),
                &format!("{text:?} is not of the form service:action"),
            ));
        }
    }
    let resources = pattern_list(st, path, "Resource", "NotResource", true)?;
    let conditions = match st.get("Condition") {
        Some(c) => Conditions::parse(c, &format!("{path}.Condition"))?,
        None => Conditions::default(),
    };
    Ok(Statement {
        effect,
        actions,
        resources,
        conditions,
    })
}

fn pattern_list(
    st: &Map<String, Value>,
    path: &str,
    name: &str,
    not_name: &str,
    variables: bool,
) -> Result<PatternList, PolicyError> {
    let (negated, key, value) = match (st.get(name), st.get(not_name)) {
        (Some(v), None) => (false, name, v),
        (None, Some(v)) => (true, not_name, v),
        (Some(_), Some(_)) => {
            return Err(PolicyError::invalid(
                path,
                &format!("has both {name} and {not_name}"),
            ));
        }
        (None, None) => {
            return Err(PolicyError::invalid(
                &format!("{path}.{name}"),
                "is missing",
            ));
        }
    };
    let field = format!("{path}.{key}");
    let texts: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| PolicyError::invalid(&field, "must hold only strings"))?,
        _ => {
            return Err(PolicyError::invalid(
                &field,
                "must be a string or a non-empty list of strings",
            ));
        }
    };
    Ok(PatternList {
        negated,
        patterns: texts
            .into_iter()
            .map(|t| Pattern::new(t, variables, true))
            .collect(),
    })
}
