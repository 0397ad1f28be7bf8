//! Builds the running server: database, session key, middleware, routes.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use actix_session::config::PersistentSession;
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{time, Key, SameSite};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Condition, Next};
use actix_web::web::{Data, PayloadConfig};
use actix_web::{App, HttpResponse, HttpServer, ResponseError};
use anyhow::Context;

use crate::accounts::setup::SetupState;
use crate::config::ServeConfig;
use crate::db::invalidation::Listener;
use crate::db::{DatabaseUrl, Db};
use crate::http::Site;
use crate::metrics::{Levels, Metrics};
use crate::notifications::{self, MailSettings, Mailer};
use crate::tokens::idle::UnusedSweeper;
use crate::tokens::inventory::InventoryTotals;
use crate::tokens::leaks::LeakReportLimit;
use crate::tokens::{
    AddressRefusals, AuthCache, Authenticator, CheckCounts, FailureThrottle, FreshCache,
    LastUsedFlusher, LastUsedRecorder,
};
use crate::{api, web};

pub struct Application {
    port: u16,
    server: Server,
    /// Serves /metrics on `--metrics-listen`, when set.
    metrics_server: Option<(u16, Server)>,
    last_used: LastUsedFlusher,
    unused_sweeper: UnusedSweeper,
    mailer: Option<Mailer>,
    invalidations: Option<Listener>,
}

impl Application {
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        let url = DatabaseUrl::parse(&config.database.database_url).map_err(anyhow::Error::msg)?;
        let metrics = Data::new(Metrics::new());
        let db = Db::connect_measured(
            url.clone(),
            config.database.db_pool_size,
            Some(metrics.pool.clone()),
        )
        .with_context(|| format!("cannot open the {} database", url.backend_name()))?;
        db.migrate()?;
        db.run_blocking(crate::accounts::upgrade_stored_data)?;
        let session_key = session_key(&config, &url)?;
        let mail = MailSettings::from_config(&config)?;
        let outbox = notifications::outbox_of(mail.as_ref());
        let listener = TcpListener::bind(&config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let port = listener.local_addr()?.port();

        let last_used = LastUsedRecorder::new(db.clone(), outbox);
        let flusher = last_used.start(
            Duration::from_secs_f64(config.last_used_flush_secs.max(0.05)),
            metrics.last_used_flush.clone(),
        );
        let unused_sweeper = UnusedSweeper::start(
            db.clone(),
            last_used.clone(),
            config.clock.clone(),
            Duration::from_secs_f64(config.auto_revoke_interval_secs.max(0.05)),
            outbox,
        );
        let mailer = mail.map(|mail| Mailer::start(db.clone(), mail, config.clock.clone()));
        let invalidations = match &url {
            DatabaseUrl::Postgres(database_url) => Some(Listener::start(
                db.clone(),
                config
                    .listen_database_url
                    .clone()
                    .unwrap_or_else(|| database_url.clone()),
                metrics.invalidations.clone(),
            )),
            DatabaseUrl::Sqlite(_) => {
                if config.listen_database_url.is_some() {
                    tracing::warn!("TOKENDESK_LISTEN_DATABASE_URL is for PostgreSQL; ignored on SQLite (one instance)");
                }
                None
            }
        };
        let cache_for = Duration::from_millis(config.auth_cache_ms);
        let authenticator = Data::new(Authenticator {
            db: db.clone(),
            cache: AuthCache::new(cache_for, config.clock.clone()),
            last_used,
            failures: FailureThrottle::new(
                config.token_failure_limit,
                Duration::from_secs(config.token_failure_window_secs.max(1)),
            ),
            address_refusals: AddressRefusals::default(),
            clock: config.clock.clone(),
            counts: CheckCounts::new(&metrics),
        });
        let metrics_server = match &config.metrics_listen {
            Some(address) => Some(metrics_server(
                address,
                metrics.clone(),
                db.clone(),
                authenticator.last_used.clone(),
            )?),
            None => None,
        };
        let request_times = metrics_server
            .is_some()
            .then(|| Data::new(metrics.request_times()));
        let timed = request_times.is_some();
        let leak_reports = Data::new(LeakReportLimit(FailureThrottle::new(
            config.leak_report_limit,
            Duration::from_secs(60),
        )));
        let sign_in_methods = Data::new(
            crate::accounts::identity_provider::SignInMethods::from_settings(
                &config.identity_provider,
            )?,
        );
        let site = Data::new(Site {
            trusted_proxies: config.trusted_proxies.clone(),
            secure_cookies: config.secure_cookies,
            public_url: config
                .public_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_owned()),
        });
        let inventory_totals = Data::new(InventoryTotals(FreshCache::new(
            cache_for,
            config.clock.clone(),
        )));
        let setup = Data::new(SetupState::default());
        let outbox = Data::new(outbox);
        let db = Data::new(db);
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
            let app = App::new();
            let app = match &request_times {
                Some(times) => app.app_data(times.clone()),
                None => app,
            };
            app.app_data(db.clone())
                .app_data(site.clone())
                .app_data(sign_in_methods.clone())
                .app_data(authenticator.clone())
                .app_data(leak_reports.clone())
                .app_data(inventory_totals.clone())
                .app_data(setup.clone())
                .app_data(outbox.clone())
                .app_data(PayloadConfig::new(64 * 1024))
                .app_data(web::error::query_config())
                .wrap(from_fn(web::middleware::require_setup))
                .wrap(from_fn(refuse_non_text_query))
                .wrap(sessions)
                .wrap(from_fn(web::middleware::security_headers))
                .wrap(from_fn(web::middleware::access_log))
                .wrap(Condition::new(
                    timed,
                    from_fn(crate::http::timing::time_requests),
                ))
                // The API first: a token check is the hot path, and actix tries routes in order
                // (every page route tried before it cost a token check a fifth of its time in
                // pattern matching). No page path has an API path's shape.
                .configure(|cfg| api::routes(cfg, timed))
                .configure(|cfg| web::routes(cfg, timed))
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
            metrics_server,
            last_used: flusher,
            unused_sweeper,
            mailer,
            invalidations,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port metrics are served on, when they are.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// Serves until stopped (SIGTERM or SIGINT drain in-flight requests first), then writes
    /// the Last-used times still pending.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = match self.metrics_server {
            // The metrics server listens to no signal: it stops when the main one has.
            Some((_, metrics)) => {
                let handle = metrics.handle();
                let main = async {
                    let served = self.server.await;
                    handle.stop(false).await;
                    served
                };
                futures_util::future::join(main, metrics).await.0
            }
            None => self.server.await,
        };
        self.unused_sweeper.stop();
        if let Some(mailer) = self.mailer {
            mailer.stop();
        }
        if let Some(invalidations) = self.invalidations {
            invalidations.stop();
        }
        self.last_used.stop();
        tracing::info!("stopped");
        served
    }
}

/// A server of its own on `address` that answers `GET /metrics` and nothing else, so metrics
/// can be kept off the public listener. Levels (the pool's, the Last-used backlog) are read
/// when scraped.
fn metrics_server(
    address: &str,
    metrics: Data<Metrics>,
    db: Db,
    last_used: std::sync::Arc<LastUsedRecorder>,
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen for metrics on {address}"))?;
    let port = listener.local_addr()?.port();
    let scrape = move || {
        let (pool_connections, pool_idle) = db.pool_state();
        let text = metrics.render(Levels {
            pool_connections,
            pool_idle,
            last_used_backlog: last_used.backlog(),
            caches_on: db.cache_generation().is_some(),
        });
        HttpResponse::Ok()
            .content_type(crate::metrics::CONTENT_TYPE)
            .body(text)
    };
    let server = HttpServer::new(move || {
        let scrape = scrape.clone();
        App::new()
            .route(
                "/metrics",
                actix_web::web::get().to(move || std::future::ready(scrape())),
            )
            .default_service(actix_web::web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(port, "metrics are served at /metrics");
    Ok((port, server))
}

/// A query string that is not text once decoded (invalid UTF-8, or NUL) is refused here, once,
/// for every route, by the same rule as form bodies: no page has a use for it, the query parser
/// would turn it into U+FFFD, and PostgreSQL cannot store or compare NUL. The API answers in JSON.
pub async fn refuse_non_text_query(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !crate::http::decodes_to_text(req.query_string().as_bytes()) {
        const DETAIL: &str = "the address holds bytes that are not text (invalid UTF-8, or NUL)";
        let res = if crate::http::is_api(req.path()) {
            api::error::ApiError::BadRequest(format!("{DETAIL}.")).error_response()
        } else {
            crate::web::error::AppError::BadRequest(DETAIL.into()).error_response()
        };
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// No route: an API-shaped address answers in JSON like the rest of the API, others a page.
async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if crate::http::is_api(req.path()) {
        api::error::not_found().await
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
    let secret = crate::domain::Secret::generate(86).into_string();
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
