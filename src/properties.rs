//! Property tests of everything that parses outside input: the token format and extractor,
//! and the forms. Each runs thousands of generated inputs (seeded, so a failure reproduces) and
//! prints how many; the HTTP-level sweep is `tests/api/hostile_input.rs`.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use chrono::Utc;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::domain::Policy;
use crate::domain::{Email, Role, TokenRequestInput};
use crate::tokens::{extract, TokenSecret, TokenSources};

const CASES: u32 = 5_000;

/// Runs `test` on `CASES` inputs from `strategy` and reports the count.
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{name}: {failure}");
    }
    println!("property {name}: {CASES} generated inputs passed");
}

/// A real token with one to three characters replaced by others of its own alphabet, so only
/// the checksum can tell the edit (anything else is refused by the alphabet check first).
fn edits_of(real: String) -> impl Strategy<Value = String> {
    let base62: Vec<char> = ('0'..='9').chain('A'..='Z').chain('a'..='z').collect();
    let edit = (4usize..42, proptest::sample::select(base62));
    proptest::collection::vec(edit, 1..4).prop_map(move |edits| {
        let mut chars: Vec<char> = real.chars().collect();
        for (at, c) in edits {
            chars[at] = c;
        }
        chars.into_iter().collect()
    })
}

#[test]
fn the_format_check_never_panics_and_passes_only_well_formed_tokens() {
    // Random strings, random bodies with a random tail, and random bodies with their real
    // checksum: the last must pass, the others only by a checksum's chance.
    let with_checksum = "[0-9A-Za-z]{32}".prop_map(|body| (TokenSecret::with_body(&body), true));
    let candidates = prop_oneof![
        any::<String>().prop_map(|s| (s, false)),
        "tdk_[0-9A-Za-z]{38}".prop_map(|s| (s, false)),
        "[ -~]{0,60}".prop_map(|s| (s, false)),
        with_checksum,
    ];
    let accepted = std::cell::Cell::new(0);
    check("token format", candidates, |(candidate, well_formed)| {
        match TokenSecret::parse(&candidate) {
            Some(parsed) => {
                accepted.set(accepted.get() + 1);
                prop_assert_eq!(parsed.expose().len(), 42);
                prop_assert!(parsed.expose().starts_with("tdk_"));
            }
            None => prop_assert!(!well_formed, "{candidate} was refused"),
        }
        Ok(())
    });
    assert!(
        accepted.get() > 500,
        "only {} tokens were well formed",
        accepted.get()
    );
}

#[test]
fn no_edit_of_a_real_token_passes_the_checksum() {
    let real = TokenSecret::generate().expose().to_owned();
    check("token edits", edits_of(real.clone()), |candidate| {
        prop_assert!(
            candidate == real || TokenSecret::parse(&candidate).is_none(),
            "{candidate} passed"
        );
        Ok(())
    });
}

#[test]
fn the_extractor_never_panics_and_only_returns_what_was_sent() {
    let header = prop_oneof![Just("authorization"), Just("x-auth-token"), Just("x-other"),];
    let value = prop_oneof![
        "[ -~]{0,80}",
        "(Bearer|bearer|Basic|) {0,2}[ -~]{0,60}",
        "tdk_[0-9A-Za-z]{38}",
    ];
    let target = prop_oneof![
        "[ -~]{0,120}",
        "/[a-z]{0,5}/(tdk_[0-9A-Za-z]{38})?/api/v0/x(\\?token=[ -~]{0,50})?",
    ];
    let inputs = (
        proptest::collection::vec((header, value), 0..4),
        proptest::collection::vec(target, 0..3),
    );
    check("token extractor", inputs, |(headers, targets)| {
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.append(HeaderName::from_static(name), value);
            }
        }
        let sources = TokenSources {
            headers: &map,
            targets: targets.iter().map(String::as_str).collect(),
        };
        if let Ok(Some(found)) = extract(&sources) {
            let sent = headers.iter().any(|(_, v)| v.contains(found.as_str()))
                || targets.iter().any(|t| t.contains(found.as_str()));
            prop_assert!(sent, "extracted {found:?} from nowhere");
        }
        Ok(())
    });
}

#[test]
fn the_token_form_accepts_only_what_its_rules_allow() {
    let text = prop_oneof![any::<String>(), "[ -~]{0,120}", Just(String::new())];
    let choice = prop_oneof![
        Just("7".to_owned()),
        Just("90".to_owned()),
        Just("never".to_owned()),
        Just("custom".to_owned()),
        "[ -~]{0,12}",
    ];
    let date = prop_oneof!["[0-9]{4}-[0-9]{2}-[0-9]{2}", "[ -~]{0,12}"];
    let scopes = proptest::collection::vec(
        prop_oneof![
            Just("tag:read".to_owned()),
            Just("license:write".to_owned()),
            "[a-zA-Z:]{0,20}",
        ],
        0..5,
    );
    let now = Utc::now().naive_utc();
    let policy = Policy {
        max_lifetime_days: Some(90),
        default_expiry: crate::domain::ExpiryChoice::ThirtyDays,
        ..Policy::default()
    };
    let addresses = prop_oneof![Just(String::new()), address_text(), any::<String>()];
    check(
        "token form",
        (text, choice, date, scopes, addresses),
        |(name, expires_in, expires_on, scopes, allowed_addresses)| {
            let input = TokenRequestInput {
                name,
                expires_in,
                expires_on,
                scopes,
                allowed_addresses,
            };
            if let Ok(request) =
                input.parse(&crate::domain::ScopeLimit::Role(Role::User), now, &policy)
            {
                prop_assert_eq!(request.name.trim(), request.name.as_str());
                prop_assert!((1..=100).contains(&request.name.chars().count()));
                prop_assert!(!request.name.chars().any(char::is_control));
                let expires = request.expiry.at().expect("the policy forbids never");
                prop_assert!(expires > now && expires <= now + chrono::Duration::days(91));
                prop_assert!(!request.scopes.is_empty());
                prop_assert!(request.scopes.iter().all(|s| s.allowed_for(Role::User)));
                if let Some(list) = &request.allowed_addresses {
                    prop_assert!((1..=20).contains(&list.len()));
                }
            }
            Ok(())
        },
    );
}

/// Text that often is an allowlist: addresses and ranges of both families, near misses,
/// separators.
fn address_text() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        (any::<[u8; 4]>(), 0u8..=34)
            .prop_map(|(a, p)| format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3])),
        any::<[u8; 4]>().prop_map(|a| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])),
        (any::<[u16; 8]>(), 0u8..=130)
            .prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv6Addr::from(a))),
        any::<[u8; 4]>().prop_map(|a| format!("::ffff:{}.{}.{}.{}", a[0], a[1], a[2], a[3])),
        "[0-9a-f:.%/]{0,20}",
    ];
    proptest::collection::vec(
        (entry, prop_oneof![Just(","), Just("\n"), Just(" , ")]),
        0..24,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .map(|(e, sep)| format!("{e}{sep}"))
            .collect()
    })
}

#[test]
fn address_allowlists_parse_or_are_refused_and_keep_what_they_allow() {
    use crate::domain::AddressAllowlist;
    let probe = prop_oneof![
        any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
        any::<[u16; 8]>().prop_map(|a| std::net::Ipv6Addr::from(a).to_string()),
        "[ -~]{0,40}",
    ];
    check(
        "address allowlist",
        (address_text(), probe),
        |(text, probe)| {
            match AddressAllowlist::parse(&text) {
                Ok(Some(list)) => {
                    prop_assert!((1..=20).contains(&list.len()));
                    // Stored and read back, it allows exactly the same.
                    let stored = AddressAllowlist::from_stored(&list.to_stored());
                    prop_assert_eq!(&stored, &list);
                    prop_assert_eq!(stored.allows(&probe), list.allows(&probe));
                    // Every entry allows its own first address.
                    for entry in list.entries() {
                        let first = entry.split('/').next().unwrap_or_default().to_owned();
                        prop_assert!(list.allows(&first), "{} does not allow {}", entry, first);
                    }
                }
                Ok(None) => prop_assert!(text.split([',', ' ', '\n']).all(str::is_empty)),
                Err(message) => prop_assert!(!message.is_empty()),
            }
            Ok(())
        },
    );
}

#[test]
fn form_bodies_are_refused_exactly_when_they_are_not_plain_text() {
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "([a-z_]{1,10}=([ -~]|%[0-9A-F]{2}){0,20}&){0,6}".prop_map(String::into_bytes),
    ];
    check("form body", body, |body| {
        let accepted = crate::http::decodes_to_text(&body);
        let _ = serde_html_form::from_bytes::<TokenRequestInput>(&body);
        let pairs: Vec<(String, String)> = serde_html_form::from_bytes(&body).unwrap_or_default();
        let mangled = pairs
            .iter()
            .any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'));
        let has_nul = pairs
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'));
        // U+FFFD can also arrive honestly, as its own UTF-8 bytes (EF BF BD).
        let lower = body.to_ascii_lowercase();
        let may_send_fffd = body.contains(&0xEF) || lower.windows(3).any(|w| w == b"%ef");
        if !accepted {
            prop_assert!(mangled || has_nul, "refused a body of plain text");
        } else if !may_send_fffd {
            prop_assert!(
                !mangled && !has_nul,
                "accepted a body that is not plain text"
            );
        }
        Ok(())
    });
}

#[test]
fn email_addresses_are_normalised_or_refused() {
    check(
        "email",
        prop_oneof![any::<String>(), "[ -~]{0,40}@[a-z.]{0,20}"],
        |raw| {
            if let Ok(email) = Email::parse(&raw) {
                let text = email.as_str();
                prop_assert!(text.contains('@') && text.len() <= 254);
                prop_assert_eq!(text, text.trim().to_lowercase());
            }
            Ok(())
        },
    );
}
