//! Builds the running server: database, session key, middleware, routes.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_session::config::PersistentSession;
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{time, Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::{Data, PayloadConfig};
use actix_web::{App, HttpServer};
use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};

use crate::config::ServeConfig;
use crate::db::{DatabaseUrl, Db, DbError};
use crate::tokens::{AuthCache, FailureThrottle, FreshCache, LastUsedFlusher, LastUsedRecorder};
use crate::users;
use crate::web;

/// Shared by every worker.
pub struct AppState {
    pub db: Db,
    pub trusted_proxies: Vec<IpAddr>,
    pub secure_cookies: bool,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    pub last_used: Arc<LastUsedRecorder>,
    pub auth_cache: AuthCache,
    /// Admin inventory totals by filter, kept as long as verified tokens.
    pub inventory_totals: FreshCache<i64>,
    pub token_failures: FailureThrottle,
    /// Once true it stays true; until then every page asks the database.
    pub setup_done: AtomicBool,
}

impl AppState {
    pub async fn setup_complete(&self) -> Result<bool, DbError> {
        if self.setup_done.load(Ordering::Acquire) {
            return Ok(true);
        }
        let done = self.db.run(users::any_exist).await?;
        if done {
            self.setup_done.store(true, Ordering::Release);
        }
        Ok(done)
    }

    pub async fn policy(&self) -> Result<crate::policy::Policy, DbError> {
        self.db.run(crate::policy::Policy::load).await
    }
}

pub struct Application {
    port: u16,
    server: Server,
    last_used: LastUsedFlusher,
}

impl Application {
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        let url = DatabaseUrl::parse(&config.database.database_url).map_err(anyhow::Error::msg)?;
        let db = Db::connect(url.clone(), config.database.db_pool_size)
            .with_context(|| format!("cannot open the {} database", url.backend_name()))?;
        db.migrate()?;
        db.run_blocking(crate::accounts::members::canonicalise_stored_emails)?;
        let session_key = session_key(&config, &url)?;
        let listener = TcpListener::bind(&config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let port = listener.local_addr()?.port();

        let last_used = LastUsedRecorder::new(db.clone());
        let flusher = last_used.start(Duration::from_secs_f64(
            config.last_used_flush_secs.max(0.05),
        ));
        let state = Data::new(AppState {
            last_used,
            auth_cache: AuthCache::new(Duration::from_millis(config.auth_cache_ms)),
            inventory_totals: FreshCache::new(Duration::from_millis(config.auth_cache_ms)),
            token_failures: FailureThrottle::new(
                config.token_failure_limit,
                Duration::from_secs(config.token_failure_window_secs.max(1)),
            ),
            db,
            trusted_proxies: config.trusted_proxies.clone(),
            secure_cookies: config.secure_cookies,
            public_url: config
                .public_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_owned()),
            setup_done: AtomicBool::new(false),
        });
        let secure = config.secure_cookies;
        let mut server = HttpServer::new(move || {
            let sessions =
                SessionMiddleware::builder(CookieSessionStore::default(), session_key.clone())
                    .cookie_name("tokendesk_session".into())
                    .cookie_secure(secure)
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .session_lifecycle(
                        PersistentSession::default()
                            .session_ttl(time::Duration::hours(crate::sessions::SESSION_HOURS)),
                    )
                    .build();
            App::new()
                .app_data(state.clone())
                .app_data(PayloadConfig::new(64 * 1024))
                .wrap(from_fn(web::middleware::require_setup))
                .wrap(from_fn(web::middleware::refuse_non_text_query))
                .wrap(sessions)
                .wrap(from_fn(web::middleware::security_headers))
                .wrap(from_fn(web::middleware::access_log))
                .configure(web::routes)
                .default_service(actix_web::web::to(not_found))
        })
        .listen(listener)?;
        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        // Database calls run on each worker's blocking threads. More threads than pooled
        // connections only queue on the pool: actix's default (hundreds a worker) let a burst
        // of page views start a hundred threads, each holding memory, and the pool's wait queue
        // grew a long latency tail.
        let blocking_threads = (config.database.db_pool_size as usize).div_ceil(workers) + 1;
        server = server
            .workers(workers)
            .worker_max_blocking_threads(blocking_threads);
        tracing::info!(port, backend = url.backend_name(), "tokendesk is listening");
        Ok(Self {
            port,
            server: server.run(),
            last_used: flusher,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped (SIGTERM or SIGINT drain in-flight requests first), then writes
    /// the Last-used times still pending.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.last_used.stop();
        tracing::info!("stopped");
        served
    }
}

/// No route: an API-shaped address answers in JSON like the rest of the API, others a page.
async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if web::middleware::is_api(req.path()) {
        crate::api::error::not_found().await
    } else {
        web::error::not_found().await
    }
}

/// The key that encrypts session cookies: from the configuration, or generated once and kept
/// in a 0600 file so a restart does not sign everyone out.
fn session_key(config: &ServeConfig, url: &DatabaseUrl) -> anyhow::Result<Key> {
    if let Some(secret) = &config.session_key {
        anyhow::ensure!(
            secret.len() >= 32,
            "TOKENDESK_SESSION_KEY must be at least 32 characters"
        );
        return Ok(Key::derive_from(secret.as_bytes()));
    }
    let path = config
        .session_key_file
        .clone()
        .unwrap_or_else(|| url.data_dir().join("tokendesk.session-key"));
    let secret = match fs::read_to_string(&path) {
        Ok(secret) => secret.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(&path)?,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    anyhow::ensure!(
        secret.len() >= 32,
        "{} holds too short a key",
        path.display()
    );
    Ok(Key::derive_from(secret.as_bytes()))
}

fn create_key_file(path: &PathBuf) -> anyhow::Result<String> {
    let secret = Alphanumeric.sample_string(&mut rand::rng(), 86);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the session key file {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a new session key");
    Ok(secret)
}
