//! AWS IoT policies: documents parsed into a compiled form and evaluated against an action, a
//! resource ARN and what is known of the requester.
//!
//! Rules (see the spec's "IoT policies"): `Action` and `Resource` patterns use IAM wildcards (`*`
//! any run including `/`, `?` one character; `+` and `#` are literal); resources may hold `${…}`
//! policy variables, and an unresolvable one stays literal text so the resource fails to match.
//! Over all policies of a principal an explicit `Deny` wins, else any `Allow`, else the request is
//! denied.
//!
//! ```
//! use iot_auth::policy::{Action, Decision, Policy, RequestContext, ResourceArns, evaluate};
//!
//! let policy = Policy::parse("cars", r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [
//!     {"Effect": "Allow", "Action": "iot:Connect",
//!      "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"},
//!     {"Effect": "Allow", "Action": "iot:Publish",
//!      "Resource": "arn:aws:iot:us-east-1:123456789012:topic/cars/${iot:ClientId}/*"}
//!   ]}"#).unwrap();
//! let arns = ResourceArns::new("us-east-1", "123456789012");
//! let ctx = RequestContext::for_client("car-7");
//! let decide = |action, resource: String| evaluate([&policy], action, &resource, &ctx);
//! assert_eq!(decide(Action::Publish, arns.topic("cars/car-7/speed")), Decision::Allow);
//! assert_eq!(decide(Action::Publish, arns.topic("cars/car-8/speed")), Decision::ImplicitDeny);
//! ```

mod action;
mod cache;
mod condition;
mod context;
mod document;
mod pattern;

use std::fmt;

pub use action::{Action, ResourceArns};
pub use cache::{DEFAULT_CACHE_CAPACITY, DecisionCache, PolicyGuard};
pub use context::{RequestContext, ThingContext};
pub use document::{Effect, MAX_POLICY_CHARS};

use document::Statement;

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON.
    #[error("the policy document is not valid JSON: {0}")]
    Json(String),
    /// Longer than [`MAX_POLICY_CHARS`] characters without whitespace.
    #[error(
        "the policy document has {chars} characters without whitespace; at most 2048 are allowed"
    )]
    TooLong {
        /// Characters counted.
        chars: usize,
    },
    /// Well-formed JSON that is not a valid policy: `path` names the offending field.
    #[error("{path} {message}")]
    Invalid {
        /// Where, e.g. `Statement[1].Effect`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl PolicyError {
    pub(crate) fn invalid(path: &str, message: &str) -> Self {
        PolicyError::Invalid {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// A compiled policy document with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    source: String,
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses and compiles a policy document.
    ///
    /// ```
    /// use iot_auth::policy::{Policy, PolicyError};
    /// let err = Policy::parse("p", r#"{"Version":"2012-10-17","Statement":[{"Effect":"allow","Action":"iot:*","Resource":"*"}]}"#)
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), r#"Statement[0].Effect must be "Allow" or "Deny""#);
    /// ```
    pub fn parse(name: &str, document: &str) -> Result<Policy, PolicyError> {
        Ok(Policy {
            name: name.to_owned(),
            source: document.to_owned(),
            statements: document::parse_document(document)?,
        })
    }

    /// The policy name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document as given.
    pub fn document(&self) -> &str {
        &self.source
    }

    /// The effects of the statements of this policy that apply to the request, as
    /// (statement index, effect).
    fn applicable<'a>(
        &'a self,
        action: Action,
        resource: &'a str,
        ctx: &'a RequestContext,
    ) -> impl Iterator<Item = (usize, Effect)> + 'a {
        let action_name = action.name();
        self.statements
            .iter()
            .enumerate()
            .filter(move |(_, st)| {
                let action_hit = st
                    .actions
                    .patterns
                    .iter()
                    .any(|p| p.matches(action_name, ctx, true));
                if action_hit == st.actions.negated {
                    return false;
                }
                let resource_hit = st
                    .resources
                    .patterns
                    .iter()
                    .any(|p| p.matches(resource, ctx, false));
                resource_hit != st.resources.negated && st.conditions.holds(ctx)
            })
            .map(|(i, st)| (i, st.effect))
    }
}

/// The outcome of evaluating a request against a principal's policies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Some statement allows it and none denies it.
    Allow,
    /// A statement denies it explicitly.
    ExplicitDeny {
        /// The policy holding the statement.
        policy: String,
        /// The statement's index in it.
        statement: usize,
    },
    /// Nothing allows it.
    ImplicitDeny,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow => f.write_str("allowed"),
            Decision::ExplicitDeny { policy, statement } => {
                write!(f, "denied by policy {policy:?}, statement {statement}")
            }
            Decision::ImplicitDeny => f.write_str("denied: no policy allows it"),
        }
    }
}

/// Evaluates `action` on `resource` over all `policies` of a principal: an explicit deny wins,
/// else any allow, else denied.
pub fn evaluate<'p>(
    policies: impl IntoIterator<Item = &'p Policy>,
    action: Action,
    resource: &str,
    ctx: &RequestContext,
) -> Decision {
    let mut allowed = false;
    for policy in policies {
        for (statement, effect) in policy.applicable(action, resource, ctx) {
            match effect {
                Effect::Deny => {
                    return Decision::ExplicitDeny {
                        policy: policy.name.clone(),
                        statement,
                    };
                }
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}
