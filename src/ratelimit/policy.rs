//! The rate limits, their defaults, and what each one counts.

use std::time::Duration;

use anyhow::bail;

use crate::config::{Rate, RateOverrides};

/// What a limit's buckets are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The client's address (an IPv6 client's /64).
    Ip,
    /// The account the operation names (its normalised email, or its id).
    Account,
    /// The client's address and the account together.
    IpAccount,
}

/// The operations that have limits of their own, by their GraphQL field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `login`.
    Login,
    /// `register`.
    Register,
    /// `refreshToken`.
    RefreshToken,
    /// `requestPasswordReset`.
    RequestPasswordReset,
    /// `resetPassword`.
    ResetPassword,
    /// `requestEmailVerification` (and the mail a refused login sends).
    RequestEmailVerification,
    /// `verifyEmail`.
    VerifyEmail,
    /// `changeEmail`.
    ChangeEmail,
    /// `cancelEmailChange`.
    CancelEmailChange,
    /// `verifyMfa` (codes are also counted per account, like passwords).
    VerifyMfa,
    /// `acceptInvitation`.
    AcceptInvitation,
}

impl Operation {
    /// The GraphQL field, which prefixes the names of the operation's limits.
    pub fn field(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::RefreshToken => "refreshToken",
            Self::RequestPasswordReset => "requestPasswordReset",
            Self::ResetPassword => "resetPassword",
            Self::RequestEmailVerification => "requestEmailVerification",
            Self::VerifyEmail => "verifyEmail",
            Self::ChangeEmail => "changeEmail",
            Self::CancelEmailChange => "cancelEmailChange",
            Self::VerifyMfa => "verifyMfa",
            Self::AcceptInvitation => "acceptInvitation",
        }
    }
}

/// The limit on all GraphQL traffic of one client (each operation of a batch counts).
pub const TRAFFIC: &str = "ip";

/// Every limit with its scope and default rate (count per seconds). The defaults are meant
/// to be kept: a person never meets them, a script does at once.
pub(super) const DEFAULTS: [(&str, Scope, u32, u64); 19] = [
    (TRAFFIC, Scope::Ip, 1_200, 60),
    ("login.ip", Scope::Ip, 60, 60),
    ("login.account", Scope::Account, 50, 3_600),
    ("login.ip_account", Scope::IpAccount, 10, 300),
    ("register.ip", Scope::Ip, 30, 3_600),
    ("register.account", Scope::Account, 5, 3_600),
    ("refreshToken.ip", Scope::Ip, 120, 60),
    ("requestPasswordReset.ip", Scope::Ip, 30, 3_600),
    ("requestPasswordReset.account", Scope::Account, 3, 3_600),
    ("resetPassword.ip", Scope::Ip, 30, 3_600),
    ("resetPassword.account", Scope::Account, 10, 3_600),
    ("requestEmailVerification.ip", Scope::Ip, 20, 3_600),
    ("requestEmailVerification.account", Scope::Account, 3, 3_600),
    ("verifyEmail.ip", Scope::Ip, 30, 3_600),
    ("changeEmail.ip", Scope::Ip, 20, 3_600),
    ("changeEmail.account", Scope::Account, 5, 3_600),
    ("cancelEmailChange.ip", Scope::Ip, 30, 3_600),
    ("verifyMfa.ip", Scope::Ip, 60, 60),
    ("acceptInvitation.ip", Scope::Ip, 30, 3_600),
];

/// One limit as configured.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Its name, as in `extensions.limit` and `RateLimit-Policy`.
    pub name: &'static str,
    /// What its buckets are keyed by.
    pub scope: Scope,
    /// Its rate; `None` when it is off.
    pub rate: Option<Rate>,
}

impl Policy {
    /// Whether the limit counts `operation`.
    pub fn counts(&self, operation: Operation) -> bool {
        self.name
            .strip_prefix(operation.field())
            .is_some_and(|rest| rest.starts_with('.'))
    }
}

/// Every limit, its default replaced where `overrides` names it.
pub fn policies(overrides: &RateOverrides) -> anyhow::Result<Vec<Policy>> {
    for (name, _) in &overrides.limits {
        if !DEFAULTS.iter().any(|(known, ..)| known == name) {
            let known: Vec<&str> = DEFAULTS.iter().map(|(n, ..)| *n).collect();
            bail!(
                "USERGRAPH_RATE_LIMITS: no limit is called `{name}`; the limits are {}",
                known.join(", ")
            );
        }
    }
    Ok(DEFAULTS
        .iter()
        .map(|&(name, scope, count, seconds)| {
            let default = Rate {
                count,
                period: Duration::from_secs(seconds),
            };
            let unnamed = (!overrides.all_off).then_some(default);
            let rate = overrides
                .limits
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(unnamed, |(_, rate)| *rate);
            Policy { name, scope, rate }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_defaults_and_unknown_names_are_refused() {
        let overrides = RateOverrides {
            all_off: false,
            limits: vec![
                ("login.ip".into(), None),
                (
                    "register.ip".into(),
                    Some(Rate {
                        count: 2,
                        period: Duration::from_secs(1),
                    }),
                ),
            ],
        };
        let all = policies(&overrides).unwrap();
        let find = |name: &str| all.iter().find(|p| p.name == name).unwrap().rate;
        assert_eq!(find("login.ip"), None);
        assert_eq!(find("register.ip").map(|r| r.count), Some(2));
        assert_eq!(find("login.account").map(|r| r.count), Some(50));
        let off = policies(&RateOverrides {
            all_off: true,
            limits: Vec::new(),
        })
        .unwrap();
        assert!(off.iter().all(|p| p.rate.is_none()));
        let only_traffic = policies(&RateOverrides {
            all_off: true,
            limits: vec![(
                TRAFFIC.into(),
                Some(Rate {
                    count: 9,
                    period: Duration::from_secs(1),
                }),
            )],
        })
        .unwrap();
        let on: Vec<&str> = only_traffic
            .iter()
            .filter(|p| p.rate.is_some())
            .map(|p| p.name)
            .collect();
        assert_eq!(on, [TRAFFIC]);
        let unknown = RateOverrides {
            all_off: false,
            limits: vec![("login.everything".into(), None)],
        };
        assert!(policies(&unknown).is_err());
    }

    #[test]
    fn each_operation_counts_its_own_limits() {
        let all = policies(&RateOverrides::default()).unwrap();
        let of = |op| -> Vec<&str> {
            all.iter()
                .filter(|p| p.counts(op))
                .map(|p| p.name)
                .collect()
        };
        assert_eq!(
            of(Operation::Login),
            ["login.ip", "login.account", "login.ip_account"]
        );
        assert_eq!(of(Operation::RefreshToken), ["refreshToken.ip"]);
        assert!(!all[0].counts(Operation::Login), "traffic is not login's");
    }
}
