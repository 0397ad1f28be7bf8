//! Every setting, from flags or the environment, in one place.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// Where the data lives: sqlite://FILE (created and migrated at start) or postgres://USER@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tokendesk.db")]
    pub database_url: String,

    /// Most connections the pool keeps open.
    #[arg(long, env = "TOKENDESK_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
}

#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "TOKENDESK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Secret that encrypts session cookies (at least 32 characters). Give every instance the
    /// same one; when unset, one is generated once and kept in a 0600 file beside the database.
    #[arg(long, env = "TOKENDESK_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,

    /// Where the generated session key is kept (default: tokendesk.session-key beside the SQLite
    /// file, or in the working directory on PostgreSQL).
    #[arg(long, env = "TOKENDESK_SESSION_KEY_FILE")]
    pub session_key_file: Option<PathBuf>,

    /// Set when users reach tokendesk over HTTPS: cookies get `Secure` and responses send HSTS.
    #[arg(long, env = "TOKENDESK_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// The address people reach tokendesk at, e.g. https://tokens.example.com: set-password
    /// links and the reveal page's examples are built from it. When unset, from the request's
    /// Host header (X-Forwarded-Host and -Proto only when sent by a trusted proxy).
    #[arg(long, env = "TOKENDESK_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Proxies (comma-separated IPs) whose X-Forwarded-For is believed for the client address.
    #[arg(long, env = "TOKENDESK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// How often Last-used times are written to the database, in seconds (they are kept in
    /// memory in between and written on shutdown too).
    #[arg(long, env = "TOKENDESK_LAST_USED_FLUSH_SECS", default_value_t = 5.0, value_parser = interval_secs)]
    pub last_used_flush_secs: f64,

    /// How often tokens unused for as long as the token policy allows are looked for and
    /// revoked, in seconds (only while the policy revokes unused tokens).
    #[arg(
        long,
        env = "TOKENDESK_AUTO_REVOKE_INTERVAL_SECS",
        default_value_t = 600.0,
        value_parser = interval_secs
    )]
    pub auto_revoke_interval_secs: f64,

    /// How long a verified token (and an admin inventory total) may be served from memory, in
    /// milliseconds (0: never). Changes made through tokendesk apply to the next request
    /// regardless (on PostgreSQL, as soon as the other instances hear of them); this bounds
    /// only how long a change made in the database by hand takes to apply.
    #[arg(long, env = "TOKENDESK_AUTH_CACHE_MS", default_value_t = 30_000)]
    pub auth_cache_ms: u64,

    /// PostgreSQL only: the session connection each instance LISTENs on to hear other
    /// instances' changes at once (default: DATABASE_URL). Point it past a PgBouncer in
    /// transaction pooling mode, which does not keep LISTEN; while it is down, caches are off.
    #[arg(long, env = "TOKENDESK_LISTEN_DATABASE_URL", hide_env_values = true)]
    pub listen_database_url: Option<String>,

    /// Bad tokens one client address may present within the window before its token checks
    /// are answered 429 for a window (0: no limit). Counted per instance.
    #[arg(long, env = "TOKENDESK_TOKEN_FAILURE_LIMIT", default_value_t = 20)]
    pub token_failure_limit: u32,

    /// Leak reports (`POST /api/v1/credentials/revoke`) one client address may send a minute
    /// before it is answered 429 for a minute (0: no limit). Counted per instance.
    #[arg(long, env = "TOKENDESK_LEAK_REPORT_LIMIT", default_value_t = 30)]
    pub leak_report_limit: u32,

    /// The window of the bad-token limit, in seconds; also how long a blocked address waits.
    #[arg(
        long,
        env = "TOKENDESK_TOKEN_FAILURE_WINDOW_SECS",
        default_value_t = 60
    )]
    pub token_failure_window_secs: u64,

    /// The mail server notifications are sent through, e.g. smtp://mail.example.com:25,
    /// smtp://host:587?tls=required or smtps://user:password@host. Mail is off while unset;
    /// with it set, TOKENDESK_PUBLIC_URL is required (mails link to the portal).
    #[arg(long, env = "TOKENDESK_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SmtpUrl>,

    /// The From of the mails sent.
    #[arg(
        long,
        env = "TOKENDESK_MAIL_FROM",
        default_value = "tokendesk <tokendesk@localhost>"
    )]
    pub mail_from: String,

    /// How often each instance looks for mail to send, in seconds.
    #[arg(long, env = "TOKENDESK_MAIL_POLL_SECS", default_value_t = 5.0, value_parser = interval_secs)]
    pub mail_poll_secs: f64,

    /// How long a failed mail waits before its first retry, in seconds; each further retry
    /// waits twice as long, up to an hour.
    #[arg(long, env = "TOKENDESK_MAIL_RETRY_SECS", default_value_t = 60.0, value_parser = interval_secs)]
    pub mail_retry_secs: f64,

    /// How long an instance has to send a mail it claimed, in seconds: after that another
    /// instance (or this one restarted) may send it again. Each step of the SMTP exchange may
    /// take an eighth of it, so a send that ends at all ends within it.
    #[arg(long, env = "TOKENDESK_MAIL_LEASE_SECS", default_value_t = 300.0, value_parser = interval_secs)]
    pub mail_lease_secs: f64,

    /// How many times a mail is tried before it is given up (audited as mail.abandoned).
    #[arg(
        long,
        env = "TOKENDESK_MAIL_MAX_ATTEMPTS",
        default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub mail_max_attempts: u32,

    /// Address and port of a second listener that serves Prometheus metrics at /metrics, and
    /// nothing else (off when unset). Keep it off the public network.
    #[arg(long, env = "TOKENDESK_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "TOKENDESK_WORKERS")]
    pub workers: Option<usize>,

    #[command(flatten)]
    pub identity_provider: IdentityProviderArgs,

    /// The system clock, or one a test moves forward.
    #[arg(skip)]
    pub clock: crate::clock::Clock,
}

impl ServeConfig {
    /// Settings for a server on `database_url` with every other value at its default.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database: DatabaseArgs {
                database_url: database_url.into(),
                db_pool_size: 16,
            },
            session_key: None,
            session_key_file: None,
            secure_cookies: false,
            public_url: None,
            trusted_proxies: Vec::new(),
            last_used_flush_secs: 5.0,
            auto_revoke_interval_secs: 600.0,
            auth_cache_ms: 30_000,
            listen_database_url: None,
            token_failure_limit: 20,
            leak_report_limit: 30,
            token_failure_window_secs: 60,
            smtp_url: None,
            mail_from: "tokendesk <tokendesk@localhost>".into(),
            mail_poll_secs: 5.0,
            mail_retry_secs: 60.0,
            mail_lease_secs: 300.0,
            mail_max_attempts: 8,
            metrics_listen: None,
            workers: None,
            identity_provider: IdentityProviderArgs::default(),
            clock: crate::clock::Clock::system(),
        }
    }
}

/// Sign-in through the company's identity provider (OpenID Connect), and whether passwords
/// still sign in.
#[derive(Args, Clone, Debug)]
pub struct IdentityProviderArgs {
    /// The identity provider's OpenID Connect issuer, e.g. https://login.example.com/realms/acme;
    /// its discovery document is read from ISSUER/.well-known/openid-configuration. Sign-in
    /// through a provider is off while unset.
    #[arg(long, env = "TOKENDESK_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The client id tokendesk is registered with at the provider.
    #[arg(long, env = "TOKENDESK_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The client secret tokendesk is registered with at the provider.
    #[arg(long, env = "TOKENDESK_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<Hidden>,

    /// The provider's name on the sign-in page: "Sign in with NAME".
    #[arg(
        long,
        env = "TOKENDESK_OIDC_PROVIDER_NAME",
        default_value = "single sign-on"
    )]
    pub oidc_provider_name: String,

    /// The ID token claim that makes a member an admin when they first sign in, e.g. groups
    /// (with TOKENDESK_OIDC_ADMIN_VALUE). Without it, new members are users.
    #[arg(long, env = "TOKENDESK_OIDC_ADMIN_CLAIM")]
    pub oidc_admin_claim: Option<String>,

    /// The value of that claim (or one of its values, for a list) that makes an admin.
    #[arg(long, env = "TOKENDESK_OIDC_ADMIN_VALUE")]
    pub oidc_admin_value: Option<String>,

    /// Whether members may sign in with a password. Off (with a provider set): only the
    /// break-glass admin may; everyone else signs in through the provider.
    #[arg(long, env = "TOKENDESK_PASSWORD_SIGN_IN", default_value_t = true, action = clap::ArgAction::Set)]
    pub password_sign_in: bool,

    /// The email of the admin who may still sign in with a password while passwords are off,
    /// for when the provider is down.
    #[arg(long, env = "TOKENDESK_BREAK_GLASS_ADMIN")]
    pub break_glass_admin: Option<String>,
}

impl Default for IdentityProviderArgs {
    fn default() -> Self {
        Self {
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_provider_name: "single sign-on".into(),
            oidc_admin_claim: None,
            oidc_admin_value: None,
            password_sign_in: true,
            break_glass_admin: None,
        }
    }
}

/// The SMTP server's address, which may hold a password.
pub type SmtpUrl = Hidden;

/// A setting that may hold a secret (a password in a URL, a client secret): it never shows in
/// `Debug` (nor in a log line or an error), only through [`Hidden::expose`].
#[derive(Clone)]
pub struct Hidden(String);

impl Hidden {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hidden(redacted)")
    }
}

impl std::str::FromStr for Hidden {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self(url.trim().to_owned()))
    }
}

/// A number of seconds between background runs: from 0.05 s to a day, so a typo cannot make
/// a busy loop or a run that never comes (nor `inf`, which cannot be a `Duration`).
fn interval_secs(raw: &str) -> Result<f64, String> {
    let secs: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of seconds"))?;
    if (0.05..=86_400.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{raw:?}: give from 0.05 to 86400 seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::{interval_secs, SmtpUrl};

    #[test]
    fn the_smtp_url_does_not_print_its_password() {
        let url: SmtpUrl = "smtps://mailer:hunter2@mail.example.com".parse().unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "smtps://mailer:hunter2@mail.example.com");
    }

    #[test]
    fn intervals_are_numbers_of_seconds_from_a_twentieth_to_a_day() {
        assert_eq!(interval_secs("0.05"), Ok(0.05));
        assert_eq!(interval_secs(" 600 "), Ok(600.0));
        assert_eq!(interval_secs("86400"), Ok(86_400.0));
        for bad in [
            "inf", "-inf", "NaN", "1e20", "-5", "0", "0.01", "86401", "", "ten",
        ] {
            assert!(interval_secs(bad).is_err(), "{bad:?}");
        }
    }
}
