//! `TestApp`: a real tokendesk server on a random port with a fresh database, and `Browser`s
//! that talk to it over HTTP the way a person's browser would (cookies, forms, CSRF tokens).

use std::sync::Once;

use diesel::{Connection, RunQueryDsl};
use rand::distr::{Alphanumeric, SampleString};
use reqwest::{Response, StatusCode};
use tokendesk::clock::Clock;
use tokendesk::config::ServeConfig;
use tokendesk::db::{DatabaseUrl, Db};
use tokendesk::domain::{hash_password, Email, Role};
use tokendesk::startup::Application;
use tokendesk::users::{self, NewUser, User};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend for each listed `async fn(TestApp)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await).await
                }
            )*
        }
    };
}

pub const ADMIN_EMAIL: &str = "ada@example.com";
pub const ADMIN_PASSWORD: &str = "analytical-engine-1843";

/// The server under test; its database is removed when it is dropped.
pub struct TestApp {
    pub address: String,
    /// Where metrics are served, when the test asked for them (`config.metrics_listen`).
    pub metrics_address: Option<String>,
    pub db: Db,
    pub database_url: String,
    /// The server's clock: `app.clock.advance(…)` instead of sleeping through a time window.
    pub clock: Clock,
    _dir: tempfile::TempDir,
    postgres_database: Option<(String, String)>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("TOKENDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn random_suffix() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 12)
        .to_lowercase()
}

/// A new, empty database on `backend`, removed with the [`TestApp`] that runs on it.
pub struct EmptyDatabase {
    dir: tempfile::TempDir,
    pub url: String,
    postgres_database: Option<(String, String)>,
}

impl EmptyDatabase {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, postgres_database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("tokendesk.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("tokendesk_test_{}", random_suffix());
                let mut admin = diesel::PgConnection::establish(&admin_url).unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required for the postgres tests and was not reachable at \
                         {admin_url} ({e}); start it or set TOKENDESK_TEST_POSTGRES_URL"
                    )
                });
                diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .expect("create test database");
                let (base, _) = admin_url
                    .rsplit_once('/')
                    .expect("URL with a database name");
                (format!("{base}/{name}"), Some((admin_url, name)))
            }
        };
        EmptyDatabase {
            dir,
            url,
            postgres_database,
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::spawn_on(EmptyDatabase::new(backend), adjust).await
    }

    /// Starts the server on a database prepared by the test (an older schema, say).
    pub async fn spawn_on(database: EmptyDatabase, adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        static LOGS: Once = Once::new();
        LOGS.call_once(|| {
            if std::env::var("TEST_LOG").is_ok() {
                tokendesk::telemetry::init(Default::default());
            }
        });
        let EmptyDatabase {
            dir,
            url: database_url,
            postgres_database,
        } = database;
        let config = test_config(&database_url, adjust);
        let clock = config.clock.clone();
        let (address, metrics_address) = start(config).await;
        let db = Db::connect(DatabaseUrl::parse(&database_url).unwrap(), 2).expect("test pool");
        TestApp {
            address,
            metrics_address,
            db,
            database_url,
            clock,
            _dir: dir,
            postgres_database,
        }
    }

    /// A fresh server on the same backend in place of this one, with `adjust`ed settings.
    pub async fn respawn_with(self, adjust: impl FnOnce(&mut ServeConfig)) -> Self {
        let backend = self.backend();
        drop(self);
        Self::spawn_with(backend, adjust).await
    }

    /// Another server on this one's database, as a second instance of a deployment is (with a
    /// session key and a clock of its own); it runs until the test ends. Returns its address.
    pub async fn another_instance(&self, adjust: impl FnOnce(&mut ServeConfig)) -> String {
        start(test_config(&self.database_url, adjust)).await.0
    }

    pub fn backend(&self) -> Backend {
        if self.database_url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// A new browser with its own cookie jar.
    pub fn browser(&self) -> Browser {
        self.browser_with(reqwest::header::HeaderMap::new())
    }

    /// A browser at client address `ip`, as a trusted proxy in front would report it (the
    /// server must trust 127.0.0.1: `config.trusted_proxies`).
    pub fn browser_from(&self, ip: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", ip.parse().unwrap());
        self.browser_with(headers)
    }

    fn browser_with(&self, headers: reqwest::header::HeaderMap) -> Browser {
        Browser::at(&self.address, headers)
    }

    /// The audit trail's events of one kind, oldest first.
    pub async fn audit_events(&self, action: &str) -> Vec<tokendesk::audit::StoredEvent> {
        let action = action.to_owned();
        let mut events: Vec<_> = self
            .db
            .run(|conn| tokendesk::audit::recent(conn, 100_000))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == action)
            .collect();
        events.reverse();
        events
    }

    /// Creates an account directly in the database (arranging a test, not testing sign-up).
    pub async fn create_user(&self, email: &str, password: &str, role: Role) -> User {
        let email = Email::parse(email).unwrap();
        let hash = hash_password(password).unwrap();
        let name = email.as_str().split('@').next().unwrap().to_owned();
        self.db
            .run(move |conn| {
                Ok(users::create(
                    conn,
                    NewUser {
                        email: &email,
                        display_name: &name,
                        password_hash: Some(&hash),
                        role,
                    },
                )
                .expect("user created"))
            })
            .await
            .unwrap()
    }

    /// First-run setup through the form; returns the admin's browser, signed in.
    pub async fn setup_admin(&self) -> Browser {
        let browser = self.browser();
        let response = browser
            .submit_form(
                "/setup",
                "/setup",
                &[
                    ("display_name", "Ada Lovelace"),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("password_confirm", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "setup failed");
        browser
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        self.db
            .run(|conn| tokendesk::audit::recent(conn, 1000))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    /// Drops the PostgreSQL database under the running server, as an outage would.
    pub fn drop_postgres_database(&self) {
        if let Some((admin_url, name)) = &self.postgres_database {
            let mut admin = diesel::PgConnection::establish(admin_url).expect("admin connection");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .expect("drop test database");
        }
    }
}

/// What a test server runs with, before `adjust` changes it.
fn test_config(database_url: &str, adjust: impl FnOnce(&mut ServeConfig)) -> ServeConfig {
    let mut config = ServeConfig::with_database(database_url);
    config.listen = "127.0.0.1:0".into();
    config.workers = Some(2);
    config.database.db_pool_size = 6;
    config.last_used_flush_secs = 0.3;
    // Tests change the database behind the server's back, as another instance would;
    // the cache has tests of its own (auth_cache.rs).
    config.auth_cache_ms = 0;
    // Tests send bad tokens by the dozen from one address; the limit has its own test.
    config.token_failure_limit = 0;
    config.session_key = Some(Alphanumeric.sample_string(&mut rand::rng(), 64));
    config.clock = Clock::adjustable();
    adjust(&mut config);
    config
}

/// Starts a server that runs until the test ends; returns its address, and its metrics
/// listener's when it has one.
async fn start(config: ServeConfig) -> (String, Option<String>) {
    let app = Application::build(config).await.expect("server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    tokio::spawn(app.run_until_stopped());
    (address, metrics)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.drop_postgres_database();
    }
}

#[derive(Clone)]
pub struct Browser {
    pub address: String,
    pub client: reqwest::Client,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
}

impl Browser {
    /// A browser with its own cookie jar for the server at `address`.
    pub fn at(address: &str, headers: reqwest::header::HeaderMap) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Browser {
            address: address.to_owned(),
            client: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap(),
            jar,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The `Cookie` header this browser sends, as someone copying it would take it.
    pub fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore;
        let url = self.address.parse().unwrap();
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// GET that must answer 200; returns the HTML.
    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// Opens `page`, takes its CSRF token, and posts `fields` to `action` as the form would.
    pub async fn submit_form(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let html = self.page(page).await;
        let csrf = csrf_token(&html);
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.submit_form(
            "/sign-in",
            "/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Saves the token policy through its form, with 100 active tokens a person.
    pub async fn set_token_policy(
        &self,
        max_lifetime_days: &str,
        default_expiry: &str,
    ) -> Response {
        self.save_token_policy(&[
            ("max_lifetime_days", max_lifetime_days),
            ("default_expiry", default_expiry),
        ])
        .await
    }

    /// Saves the token policy through its form: `changes` over the defaults (no maximum
    /// lifetime, 30 days preselected, 100 active tokens a person, application tokens within 365
    /// days and any scope, unused tokens kept).
    pub async fn save_token_policy(&self, changes: &[(&str, &str)]) -> Response {
        let fields = policy_fields(changes);
        self.submit_form("/admin/settings", "/admin/settings", &fields)
            .await
    }

    /// Adds Linus (linus@example.com, a user) through the Members form, with a one-time
    /// set-password link instead of a password.
    pub async fn invite_linus(&self) -> Response {
        self.submit_form(
            "/admin/members/new",
            "/admin/members",
            &[
                ("display_name", "Linus"),
                ("email", "linus@example.com"),
                ("role", "user"),
                ("method", "link"),
            ],
        )
        .await
    }

    /// The one-time set-password link the admin is shown (once) after making one.
    pub async fn set_password_link_shown(&self) -> String {
        let html = self.page("/admin/members/link").await;
        let start = html.find("/set-password/").expect("the link is shown");
        let end = html[start..].find('"').unwrap() + start;
        html[start..end].to_owned()
    }

    /// Sets a password with a set-password link, as the member it was sent to would.
    pub async fn set_password_by_link(&self, link: &str, password: &str) -> Response {
        let fields = [("password", password), ("password_confirm", password)];
        self.submit_form(link, link, &fields).await
    }

    /// Changes the signed-in person's password on My account.
    pub async fn change_password(&self, current: &str, new: &str) -> Response {
        let fields = [
            ("current_password", current),
            ("password", new),
            ("password_confirm", new),
        ];
        self.submit_form("/account", "/account/password", &fields)
            .await
    }

    pub async fn sign_out(&self) -> Response {
        self.submit_form("/developer/access-tokens", "/sign-out", &[])
            .await
    }
}

pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

pub fn location(response: &Response) -> &str {
    response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
}

impl Browser {
    /// Submits the New token form with these fields, as typed.
    pub async fn submit_new_token(&self, fields: &[(&str, &str)]) -> Response {
        self.submit_form(
            "/developer/access-tokens/new",
            "/developer/access-tokens",
            fields,
        )
        .await
    }

    /// Submits the New token form for a 30-day `tag:read` token named `name`, and stops at its
    /// redirect: the one-time reveal is still to be seen.
    pub async fn create_token_unseen(&self, name: &str) {
        let fields = [("name", name), ("expires_in", "30"), ("scopes", "tag:read")];
        let response = self.submit_new_token(&fields).await;
        assert_eq!(location(&response), "/developer/access-tokens/reveal");
    }

    /// Fills in the New token form and returns the secret from the one-time reveal.
    pub async fn create_token(&self, name: &str, expires_in: &str, scopes: &[&str]) -> String {
        let mut fields = vec![("name", name), ("expires_in", expires_in)];
        fields.extend(scopes.iter().map(|s| ("scopes", *s)));
        let response = self.submit_new_token(&fields).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "token {name} not created"
        );
        assert_eq!(location(&response), "/developer/access-tokens/reveal");
        let html = self.page("/developer/access-tokens/reveal").await;
        revealed_secret(&html).expect("the reveal page shows the token")
    }
}

/// The Token policy form's fields: the defaults (no maximum lifetime, 30 days preselected,
/// 100 active tokens a person, application tokens within 365 days and any scope, unused tokens
/// kept), with `changes`.
pub fn policy_fields<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("max_lifetime_days", ""),
        ("default_expiry", "30"),
        ("max_active_tokens", "100"),
        ("application_max_lifetime_days", "365"),
        ("application_scope_rule", "any"),
        ("revoke_unused_after_days", ""),
        // Tests arrange unused tokens on purpose: revoking them at once is what they ask.
        ("confirm_revoke_now", "on"),
    ];
    for (name, value) in changes {
        match fields.iter_mut().find(|(field, _)| field == name) {
            Some(field) => field.1 = value,
            None => fields.push((name, value)),
        }
    }
    fields
}

/// The token shown on a reveal page, if any.
pub fn revealed_secret(html: &str) -> Option<String> {
    let start = html.find("value=\"tdk_")? + "value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The password of the people [`user_and_browser`] makes.
pub const USER_PASSWORD: &str = "correct-horse-battery";

pub async fn user_and_browser(app: &TestApp, email: &str, role: Role) -> (User, Browser) {
    let user = app.create_user(email, USER_PASSWORD, role).await;
    let browser = app.browser();
    let response = browser.sign_in(email, USER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    (user, browser)
}

/// The stored rows of a person's tokens, newest first.
pub async fn stored_tokens(app: &TestApp, user_id: i64) -> Vec<StoredToken> {
    use diesel::prelude::*;
    use tokendesk::db::schema::personal_access_tokens as pat;
    app.db
        .run(move |conn| {
            pat::table
                .filter(pat::user_id.eq(user_id))
                .order(pat::id.desc())
                .select((
                    pat::id,
                    pat::name,
                    pat::digest,
                    pat::hint,
                    pat::scopes,
                    pat::created_at,
                    pat::expires_at,
                    pat::revoked_at,
                    pat::revoked_by,
                ))
                .load::<StoredToken>(conn)
        })
        .await
        .unwrap()
}

#[derive(Debug, diesel::Queryable)]
pub struct StoredToken {
    pub id: i64,
    pub name: String,
    pub digest: String,
    pub hint: String,
    pub scopes: String,
    pub created_at: chrono::NaiveDateTime,
    pub expires_at: Option<chrono::NaiveDateTime>,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    pub revoked_by: Option<i64>,
}

/// Ways a client presents a token.
#[derive(Clone, Copy, Debug)]
pub enum Presented {
    Bearer,
    XAuthToken,
    Query,
    PathSegment,
}

pub const EVERY_WAY: [Presented; 4] = [
    Presented::Bearer,
    Presented::XAuthToken,
    Presented::Query,
    Presented::PathSegment,
];

impl TestApp {
    /// Creates a token directly in the store (arranging a test); returns its id and secret.
    pub async fn token_for(&self, user_id: i64, name: &str, scopes: &[&str]) -> (i64, String) {
        let owner = tokendesk::tokens::TokenOwner::Person(user_id);
        self.token_of(owner, user_id, name, scopes).await
    }

    /// Creates a token of `owner` (a person or an application), made by `creator_id`, that
    /// never expires, directly in the store; returns its id and secret.
    pub async fn token_of(
        &self,
        owner: tokendesk::tokens::TokenOwner,
        creator_id: i64,
        name: &str,
        scopes: &[&str],
    ) -> (i64, String) {
        self.stored_token(owner, creator_id, name, scopes, true)
            .await
    }

    /// Like [`TestApp::token_for`], as a change made in the database by hand: outside
    /// `Db::write`, so no instance is told (their caches learn of it only when entries age out).
    #[allow(dead_code)] // tests/faults
    pub async fn token_by_hand(&self, user_id: i64, name: &str, scopes: &[&str]) -> (i64, String) {
        let owner = tokendesk::tokens::TokenOwner::Person(user_id);
        self.stored_token(owner, user_id, name, scopes, false).await
    }

    async fn stored_token(
        &self,
        owner: tokendesk::tokens::TokenOwner,
        creator_id: i64,
        name: &str,
        scopes: &[&str],
        announced: bool,
    ) -> (i64, String) {
        let request = tokendesk::domain::TokenRequest {
            name: name.to_owned(),
            expiry: tokendesk::domain::Expiry::Never,
            scopes: tokendesk::domain::ScopeSet::parse(scopes.iter().copied()).unwrap(),
            allowed_addresses: None,
        };
        let create = move |conn: &mut tokendesk::db::AnyConnection| {
            Ok(tokendesk::tokens::store::create(conn, owner, creator_id, &request).unwrap())
        };
        let created = if announced {
            self.db.write(create).await
        } else {
            self.db.run(create).await
        };
        let created = created.unwrap();
        (created.token.id, created.secret.expose().to_owned())
    }

    /// Sets the token policy's active-token limit (a test that makes hundreds of tokens).
    #[allow(dead_code)] // tests/faults
    pub async fn set_active_token_limit(&self, limit: i64) {
        self.db
            .write(move |conn| {
                let mut policy = tokendesk::policy::load(conn)?;
                policy.max_active_tokens = limit;
                tokendesk::policy::save(conn, &policy)
            })
            .await
            .unwrap();
    }

    /// A plain HTTP client (no cookies), as another service would be.
    pub fn api(&self) -> Api {
        Api {
            address: self.address.clone(),
            client: reqwest::Client::new(),
        }
    }

    /// A token's stored Last used time.
    pub async fn last_used_at(&self, token_id: i64) -> Option<chrono::NaiveDateTime> {
        use diesel::prelude::*;
        use tokendesk::db::schema::token_last_uses as uses;
        self.db
            .run(move |conn| {
                uses::table
                    .find(token_id)
                    .select(uses::last_used_at)
                    .first(conn)
            })
            .await
            .unwrap()
    }

    /// Arranges a token's lifetime (as time passing would): when it was made, when it expires,
    /// when it was revoked.
    pub async fn set_token_times(&self, id: i64, times: TokenTimes) {
        use diesel::prelude::*;
        use tokendesk::db::schema::personal_access_tokens as pat;
        self.db
            .write(move |conn| {
                let row = pat::table.find(id);
                if let Some(at) = times.created_at {
                    diesel::update(row)
                        .set(pat::created_at.eq(at))
                        .execute(conn)?;
                }
                if let Some(at) = times.expires_at {
                    diesel::update(row)
                        .set(pat::expires_at.eq(at))
                        .execute(conn)?;
                }
                if let Some(at) = times.revoked_at {
                    diesel::update(row)
                        .set(pat::revoked_at.eq(at))
                        .execute(conn)?;
                }
                if let Some((at, ip)) = times.last_used {
                    use tokendesk::db::schema::token_last_uses as uses;
                    diesel::update(uses::table.find(id))
                        .set((uses::last_used_at.eq(at), uses::last_used_ip.eq(ip)))
                        .execute(conn)?;
                }
                if let Some(at) = times.regenerated_at {
                    use tokendesk::db::schema::token_last_uses as uses;
                    diesel::update(row)
                        .set(pat::regenerated_at.eq(at))
                        .execute(conn)?;
                    diesel::update(uses::table.find(id))
                        .set(uses::secret_since.eq(at))
                        .execute(conn)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    /// Changes a member's role or status directly, as another instance (or admin) would.
    pub async fn set_member(&self, id: i64, role: Role, active: bool) {
        self.db
            .write(move |conn| {
                users::set_role(conn, id, role)?;
                users::set_active(conn, id, active)
            })
            .await
            .unwrap();
    }
}

/// What [`TestApp::set_token_times`] changes; `None` leaves a time as it is.
#[derive(Clone, Debug, Default)]
pub struct TokenTimes {
    pub created_at: Option<chrono::NaiveDateTime>,
    pub expires_at: Option<chrono::NaiveDateTime>,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    pub last_used: Option<(chrono::NaiveDateTime, Option<String>)>,
    pub regenerated_at: Option<chrono::NaiveDateTime>,
}

/// `token` one character off: what a typo, or a guesser close to it, sends. Never the token.
pub fn a_guess_at(token: &str) -> String {
    let mut guess = token.to_owned();
    guess.replace_range(6..7, if &token[6..7] == "A" { "B" } else { "A" });
    guess
}

/// A time `days` days ago (negative: ahead).
pub fn days_ago(days: i64) -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc() - chrono::Duration::days(days)
}

pub struct Api {
    pub address: String,
    pub client: reqwest::Client,
}

impl Api {
    /// `GET /api/v1{path}` presenting `token` the given way.
    pub fn get(&self, path: &str, token: &str, way: Presented) -> reqwest::RequestBuilder {
        let url = match way {
            Presented::Query => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{}/api/v1{path}{sep}token={token}", self.address)
            }
            Presented::PathSegment => format!("{}/{token}/api/v1{path}", self.address),
            _ => format!("{}/api/v1{path}", self.address),
        };
        let request = self.client.get(url);
        match way {
            Presented::Bearer => request.bearer_auth(token),
            Presented::XAuthToken => request.header("x-auth-token", token),
            _ => request,
        }
    }

    /// `GET /api/v1{path}` with `token` as Bearer: the status and the JSON body.
    pub async fn json(&self, path: &str, token: &str) -> (StatusCode, serde_json::Value) {
        let response = self
            .get(path, token, Presented::Bearer)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    /// `POST {path}` presenting `token` as Bearer, with `body` as JSON (None: no body at all).
    pub async fn post_as(
        &self,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Response {
        let url = format!("{}{path}", self.address);
        let request = self.client.post(url).bearer_auth(token);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.unwrap()
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get("/me", token, Presented::Bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn verify(&self, query: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = self
            .client
            .get(format!("{}/auth/verify{query}", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }
}

/// A plain client whose connections come from `source`: any 127.x address reaches a server
/// listening on 127.0.0.1, so tests can be clients at different addresses for real.
pub fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Where a personal token rotates itself.
pub const SELF_ROTATE: &str = "/api/v1/personal-access-tokens/self/rotate";

/// An error body's code and message.
pub async fn api_error(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The first table cell of `class` in a page, tags and all (the list's Last used, say).
pub fn cell<'a>(html: &'a str, class: &str) -> &'a str {
    let marker = format!("class=\"nowrap {class}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("a {class} cell in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</td>").expect("the cell ends")]
}

/// The value of the first hidden input named `name` in a page (a form's carried state).
pub fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("type=\"hidden\" name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in the page"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}
