//! The actions AWS IoT authorizes, by their policy names.

use std::fmt;

/// An action a request asks for, named as in policies (`iot:Publish`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `iot:Connect`: resource `client/{clientId}`.
    Connect,
    /// `iot:Publish`: resource `topic/{topic}`.
    Publish,
    /// `iot:Subscribe`: resource `topicfilter/{filter}`.
    Subscribe,
    /// `iot:Receive`: resource `topic/{topic}`, checked per delivery.
    Receive,
    /// `iot:RetainPublish`: resource `topic/{topic}`, needed besides `iot:Publish` for RETAIN=1.
    RetainPublish,
    /// `iot:GetThingShadow` (REST): resource `thing/{thing}[/{shadow}]`.
    GetThingShadow,
    /// `iot:UpdateThingShadow` (REST): resource `thing/{thing}[/{shadow}]`.
    UpdateThingShadow,
    /// `iot:DeleteThingShadow` (REST): resource `thing/{thing}[/{shadow}]`.
    DeleteThingShadow,
    /// `iot:ListNamedShadowsForThing` (REST): resource `*`.
    ListNamedShadowsForThing,
    /// `iot:GetRetainedMessage` (REST, `GetRetainedMessage`): resource `topic/{topic}`.
    GetRetainedMessage,
    /// `iot:ListRetainedMessages` (REST, `ListRetainedMessages`): resource `*`.
    ListRetainedMessages,
    /// `greengrass:Discover` (Greengrass discovery, `GET /greengrass/discover/thing/{thing}`):
    /// resource `thing/{thing}`, the client device asking, never the core.
    GreengrassDiscover,
    /// `greengrass:GetConnectivityInfo`: resource
    /// `arn:aws:greengrass:{region}:{account}:/greengrass/things/{core}/connectivityInfo`.
    GreengrassGetConnectivityInfo,
    /// `greengrass:UpdateConnectivityInfo`: resource as for
    /// [`GreengrassGetConnectivityInfo`](Self::GreengrassGetConnectivityInfo).
    GreengrassUpdateConnectivityInfo,
    /// `greengrass:PutCertificateAuthorities` (a core uploads the CAs of its local broker): AWS
    /// documents the action with resource `*` only; we check it on the core's `thing/{core}`.
    GreengrassPutCertificateAuthorities,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 15] = [
        Action::Connect,
        Action::Publish,
        Action::Subscribe,
        Action::Receive,
        Action::RetainPublish,
        Action::GetThingShadow,
        Action::UpdateThingShadow,
        Action::DeleteThingShadow,
        Action::ListNamedShadowsForThing,
        Action::GetRetainedMessage,
        Action::ListRetainedMessages,
        Action::GreengrassDiscover,
        Action::GreengrassGetConnectivityInfo,
        Action::GreengrassUpdateConnectivityInfo,
        Action::GreengrassPutCertificateAuthorities,
    ];

    /// The policy name, e.g. `iot:Publish` or `greengrass:Discover`.
    ///
    /// ```
    /// use iot_auth::policy::Action;
    /// assert_eq!(Action::RetainPublish.name(), "iot:RetainPublish");
    /// assert_eq!(Action::GreengrassDiscover.name(), "greengrass:Discover");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::Subscribe => "iot:Subscribe",
            Action::Receive => "iot:Receive",
            Action::RetainPublish => "iot:RetainPublish",
            Action::GetThingShadow => "iot:GetThingShadow",
            Action::UpdateThingShadow => "iot:UpdateThingShadow",
            Action::DeleteThingShadow => "iot:DeleteThingShadow",
            Action::ListNamedShadowsForThing => "iot:ListNamedShadowsForThing",
            Action::GetRetainedMessage => "iot:GetRetainedMessage",
            Action::ListRetainedMessages => "iot:ListRetainedMessages",
            Action::GreengrassDiscover => "greengrass:Discover",
            Action::GreengrassGetConnectivityInfo => "greengrass:GetConnectivityInfo",
            Action::GreengrassUpdateConnectivityInfo => "greengrass:UpdateConnectivityInfo",
            Action::GreengrassPutCertificateAuthorities => "greengrass:PutCertificateAuthorities",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds the resource ARNs of one account and region:
/// `arn:aws:iot:{region}:{account}:{kind}/{name}`, and the one Greengrass resource that lives
/// under `arn:aws:greengrass:…` (a core's connectivity information).
///
/// ```
/// use iot_auth::policy::ResourceArns;
/// let arns = ResourceArns::new("us-east-1", "123456789012");
/// assert_eq!(arns.topic("a/b"), "arn:aws:iot:us-east-1:123456789012:topic/a/b");
/// assert_eq!(arns.thing("car", Some("gps")), "arn:aws:iot:us-east-1:123456789012:thing/car/gps");
/// assert_eq!(
///     arns.connectivity_info("core-1"),
///     "arn:aws:greengrass:us-east-1:123456789012:/greengrass/things/core-1/connectivityInfo"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceArns {
    prefix: String,
    greengrass_prefix: String,
}

impl ResourceArns {
    /// ARNs for `region` and the 12-digit `account`.
    pub fn new(region: &str, account: &str) -> Self {
        ResourceArns {
            prefix: format!("arn:aws:iot:{region}:{account}:"),
            greengrass_prefix: format!("arn:aws:greengrass:{region}:{account}:"),
        }
    }

    /// `arn:aws:greengrass:{region}:{account}:/greengrass/things/{core}/connectivityInfo`, the
    /// resource of `greengrass:GetConnectivityInfo` and `greengrass:UpdateConnectivityInfo` (as
    /// AWS's minimal core-device policy names it).
    pub fn connectivity_info(&self, core: &str) -> String {
        format!(
            "{}/greengrass/things/{core}/connectivityInfo",
            self.greengrass_prefix
        )
    }

    /// `…:client/{client_id}`.
    pub fn client(&self, client_id: &str) -> String {
        format!("{}client/{client_id}", self.prefix)
    }

    /// `…:topic/{topic}`.
    pub fn topic(&self, topic: &str) -> String {
        format!("{}topic/{topic}", self.prefix)
    }

    /// `…:topicfilter/{filter}`.
    pub fn topic_filter(&self, filter: &str) -> String {
        format!("{}topicfilter/{filter}", self.prefix)
    }

    /// `…:thing/{thing}` or `…:thing/{thing}/{shadow}` for a named shadow.
    pub fn thing(&self, thing: &str, shadow: Option<&str>) -> String {
        match shadow {
            Some(shadow) => format!("{}thing/{thing}/{shadow}", self.prefix),
            None => format!("{}thing/{thing}", self.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_in_the_iot_or_greengrass_namespace() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("iot:") || n.starts_with("greengrass:"))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }

    #[test]
    fn retained_message_actions() {
        assert_eq!(Action::GetRetainedMessage.name(), "iot:GetRetainedMessage");
        assert_eq!(
            Action::ListRetainedMessages.to_string(),
            "iot:ListRetainedMessages"
        );
        assert!(Action::ALL.contains(&Action::GetRetainedMessage));
        assert!(Action::ALL.contains(&Action::ListRetainedMessages));
    }

    #[test]
    fn greengrass_actions_are_listed_with_their_names() {
        for (action, name) in [
            (Action::GreengrassDiscover, "greengrass:Discover"),
            (
                Action::GreengrassGetConnectivityInfo,
                "greengrass:GetConnectivityInfo",
            ),
            (
                Action::GreengrassUpdateConnectivityInfo,
                "greengrass:UpdateConnectivityInfo",
            ),
            (
                Action::GreengrassPutCertificateAuthorities,
                "greengrass:PutCertificateAuthorities",
            ),
        ] {
            assert_eq!(action.name(), name);
            assert!(Action::ALL.contains(&action));
        }
    }
}
