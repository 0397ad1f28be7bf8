//! A notification as the plain-text mail its recipient reads: what happened to which token,
//! when, and a link to the token's page on the portal. Never a secret, a digest or a hint.

use chrono::NaiveDateTime;

use super::{Facts, Notice, Revocation};

/// A mail's subject and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Where things are on the portal, from its public address (`https://tokens.example.com`).
struct Links<'a> {
    public_url: &'a str,
    /// The token's page: `/developer/access-tokens/{id}`, or under its application.
    token: String,
    /// Where a new token is made.
    new: String,
}

impl<'a> Links<'a> {
    fn new(public_url: &'a str, token_id: i64, facts: &Facts) -> Self {
        let shelf = match &facts.application {
            None => "/developer/access-tokens".to_owned(),
            Some(application) => format!("/developer/applications/{}/tokens", application.id),
        };
        Links {
            public_url,
            token: format!("{public_url}{shelf}/{token_id}"),
            new: format!("{public_url}{shelf}/new"),
        }
    }
}

fn exact(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Text from outside (a client's user agent) as one short line: no control characters.
fn one_line(text: &str, at_most: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(at_most)
        .collect();
    if text.chars().count() > at_most {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

/// Renders one notification. `created_at`: when it was enqueued, i.e. when what it tells
/// about happened.
pub(super) fn render(
    facts: &Facts,
    token_id: i64,
    token_name: &str,
    created_at: NaiveDateTime,
    public_url: &str,
) -> Rendered {
    let links = Links::new(public_url, token_id, facts);
    let (your, token) = match &facts.application {
        None => (
            "Your access token".to_owned(),
            format!("your personal access token “{token_name}”"),
        ),
        Some(application) => (
            format!("{}'s access token", application.name),
            format!(
                "the application token “{token_name}” of {}, which you maintain,",
                application.name
            ),
        ),
    };
    let (subject, what) = match &facts.notice {
        Notice::TokenCreated => (
            format!("{your} “{token_name}” was created"),
            format!(
                "A new token was created: {token}, on {}.\n\n\
                 If you made it, there is nothing to do. If you did not, revoke it at once and \
                 tell your administrator:\n{}",
                exact(created_at),
                links.token
            ),
        ),
        Notice::TokenRevokedByAdmin { how } => {
            let why = match how {
                Revocation::Admin { email } => format!("{email} revoked {token}"),
                Revocation::Bulk { email } => format!(
                    "{email} revoked {token}, with other tokens matching a search of all tokens"
                ),
                Revocation::Unused { days: n } => format!(
                    "Your organisation's token policy revoked {token}: it was not used for {}",
                    days(*n)
                ),
                Revocation::LeakReport { reporter_ip } => format!(
                    "{} was reported as leaked (found where others can see it) by a client at \
                     {}, and revoked at once. Find out where it was exposed",
                    capitalised(&token),
                    one_line(reporter_ip, 100)
                ),
            };
            (
                format!("{your} “{token_name}” was revoked"),
                format!(
                    "{why}, on {}.\n\n\
                     Anything still using it is refused from now on. If it is still needed, \
                     create a new token:\n{}\n\nThe revoked token:\n{}",
                    exact(created_at),
                    links.new,
                    links.token
                ),
            )
        }
        Notice::ExpiresSoon {
            days: n,
            expires_at,
        } => (
            format!("{your} “{token_name}” expires in {}", days(*n)),
            format!(
                "{} expires on {} (in {} or less). After that, anything using it is refused.\n\n\
                 To keep it working, regenerate it: it gets a new secret and a new expiry, with \
                 its name and scopes as they are:\n{}/regenerate",
                capitalised(&token),
                exact(*expires_at),
                days(*n),
                links.token
            ),
        ),
        Notice::NewAddress {
            address,
            user_agent,
            seen_at,
        } => {
            let agent = user_agent
                .as_deref()
                .filter(|agent| !agent.trim().is_empty())
                .map(|agent| format!(" (user agent: {})", one_line(agent, 200)))
                .unwrap_or_default();
            (
                format!("{your} “{token_name}” was used from a new address"),
                format!(
                    "{} was used from {}{agent} on {}, an address it had not been used from \
                     before.\n\n\
                     If that was you, or a service of yours, there is nothing to do. If not, \
                     revoke it at once:\n{}",
                    capitalised(&token),
                    one_line(address, 100),
                    exact(*seen_at),
                    links.token
                ),
            )
        }
    };
    let body = format!(
        "Hello,\n\n{what}\n\n-- \ntokendesk, {}\nYou get this mail because {}.\n",
        links.public_url,
        match &facts.application {
            None => "the token is yours".to_owned(),
            Some(application) => format!("you maintain {}", application.name),
        }
    );
    Rendered { subject, body }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::ApplicationRef;
    use chrono::NaiveDate;

    const PORTAL: &str = "https://tokens.example.com";

    fn at(h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(h, 5, 0)
            .unwrap()
    }

    fn personal(notice: Notice) -> Facts {
        Facts {
            notice,
            application: None,
        }
    }

    #[test]
    fn a_new_address_names_the_token_the_address_the_agent_and_the_time() {
        let facts = personal(Notice::NewAddress {
            address: "203.0.113.9".into(),
            user_agent: Some("curl/8.5\r\nBcc: x@example.com".into()),
            seen_at: at(9),
        });
        let mail = render(&facts, 12, "deploy", at(10), PORTAL);
        assert_eq!(
            mail.subject,
            "Your access token “deploy” was used from a new address"
        );
        assert!(mail.body.contains(
            "Your personal access token “deploy” was used from 203.0.113.9 (user agent: \
             curl/8.5  Bcc: x@example.com) on 2026-11-26 09:05 UTC"
        ));
        assert!(mail
            .body
            .contains("https://tokens.example.com/developer/access-tokens/12\n"));
        // No user agent: nothing about one.
        let facts = personal(Notice::NewAddress {
            address: "2001:db8::1".into(),
            user_agent: None,
            seen_at: at(9),
        });
        let mail = render(&facts, 12, "deploy", at(10), PORTAL);
        assert!(
            mail.body.contains("used from 2001:db8::1 on"),
            "{}",
            mail.body
        );
    }

    #[test]
    fn a_long_user_agent_is_cut() {
        let facts = personal(Notice::NewAddress {
            address: "203.0.113.9".into(),
            user_agent: Some("x".repeat(5000)),
            seen_at: at(9),
        });
        let mail = render(&facts, 1, "ci", at(9), PORTAL);
        assert!(mail.body.len() < 1000, "{}", mail.body.len());
        assert!(mail.body.contains(&format!("{}…", "x".repeat(200))));
    }

    #[test]
    fn expiry_reminders_link_to_regenerate() {
        let facts = personal(Notice::ExpiresSoon {
            days: 7,
            expires_at: at(12),
        });
        let mail = render(&facts, 5, "ci", at(9), PORTAL);
        assert_eq!(mail.subject, "Your access token “ci” expires in 7 days");
        assert!(mail
            .body
            .contains("https://tokens.example.com/developer/access-tokens/5/regenerate"));
        assert!(mail.body.contains("expires on 2026-11-26 12:05 UTC"));
    }

    #[test]
    fn revocations_say_who_or_why() {
        let by_admin = personal(Notice::TokenRevokedByAdmin {
            how: Revocation::Admin {
                email: "ada@example.com".into(),
            },
        });
        let mail = render(&by_admin, 5, "ci", at(9), PORTAL);
        assert_eq!(mail.subject, "Your access token “ci” was revoked");
        assert!(mail
            .body
            .contains("ada@example.com revoked your personal access token “ci”"));
        let unused = personal(Notice::TokenRevokedByAdmin {
            how: Revocation::Unused { days: 90 },
        });
        let mail = render(&unused, 5, "ci", at(9), PORTAL);
        assert!(mail.body.contains("it was not used for 90 days"));
        let leaked = personal(Notice::TokenRevokedByAdmin {
            how: Revocation::LeakReport {
                reporter_ip: "198.51.100.4".into(),
            },
        });
        let mail = render(&leaked, 5, "ci", at(9), PORTAL);
        assert!(mail.body.contains(
            "Your personal access token “ci” was reported as leaked (found where others can see \
             it) by a client at 198.51.100.4, and revoked at once."
        ));
    }

    #[test]
    fn an_application_token_links_under_its_application() {
        let facts = Facts {
            notice: Notice::TokenCreated,
            application: Some(ApplicationRef {
                id: 3,
                name: "Billing".into(),
            }),
        };
        let mail = render(&facts, 8, "deploy", at(9), PORTAL);
        assert_eq!(mail.subject, "Billing's access token “deploy” was created");
        assert!(mail
            .body
            .contains("https://tokens.example.com/developer/applications/3/tokens/8\n"));
        assert!(mail.body.contains("because you maintain Billing"));
    }
}
