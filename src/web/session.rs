//! Who is signed in. The session cookie holds a random session secret (the server keeps its
//! digest, see [`crate::sessions`]), the CSRF token and one-shot notices. The session row and
//! the user are loaded together on every request, so signing out, a role change or a
//! deactivation applies at once, whatever copies of the cookie exist.

use crate::domain::Secret;
use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::tokens::CreatedToken;
use crate::users::User;
use crate::web::error::AppError;

const SESSION_SECRET: &str = "sid";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
const SHOWING: &str = "showing";

pub struct CurrentUser {
    pub user: User,
    pub csrf: String,
    pub session: Session,
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let db = req.app_data::<web::Data<Db>>().cloned();
        let next = matches!(*req.method(), Method::GET | Method::HEAD).then(|| {
            req.uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned())
        });
        Box::pin(async move {
            let db = db.ok_or_else(|| anyhow::anyhow!("the database is not registered"))?;
            let sign_in_required = AppError::SignInRequired { next };
            let Some(secret) = session_secret(&session) else {
                return Err(sign_in_required);
            };
            let now = Utc::now().naive_utc();
            let user = db
                .read(move |conn| crate::sessions::user_for(conn, &secret, now))
                .await?;
            match user {
                Some(user) => {
                    let csrf = csrf_token(&session);
                    Ok(CurrentUser {
                        user,
                        csrf,
                        session,
                    })
                }
                None => {
                    session.purge();
                    Err(sign_in_required)
                }
            }
        })
    }
}

/// The secret of the session this cookie claims to belong to, if any.
pub fn session_secret(session: &Session) -> Option<String> {
    session.get::<String>(SESSION_SECRET).ok().flatten()
}

impl CurrentUser {
    /// The signed-in person as the actor of a change, for the audit trail.
    pub fn actor(&self, client_ip: &crate::http::ClientIp) -> crate::tokens::actions::Actor {
        crate::tokens::actions::Actor {
            user_id: self.user.id,
            email: self.user.email.clone(),
            client_ip: client_ip.0.clone(),
        }
    }
}

/// Puts a new server-side session (from [`crate::sessions::start`]) in a renewed cookie, so a
/// session id planted before sign-in is worthless after it, with a fresh CSRF token.
pub fn sign_in(session: &Session, session_secret: String) -> Result<(), AppError> {
    session.renew();
    session.clear();
    session
        .insert(SESSION_SECRET, session_secret)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session write failed: {e}")))?;
    new_csrf_token(session);
    Ok(())
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    match session.get::<String>(CSRF).ok().flatten() {
        Some(token) => token,
        None => new_csrf_token(session),
    }
}

fn new_csrf_token(session: &Session) -> String {
    let token = Secret::generate(43).into_string();
    let _ = session.insert(CSRF, token.clone());
    token
}

/// Compares in time that does not depend on where the strings first differ.
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(expected) = session.get::<String>(CSRF).ok().flatten() else {
        return false;
    };
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// A one-line notice for the next page (post/redirect/get): news of something done, or word
/// of why it was not, which must look like an error.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    pub refusal: bool,
    pub text: String,
}

impl Flash {
    /// The alert's class (templates/flash.html).
    pub fn class(&self) -> &'static str {
        if self.refusal {
            "alert-error"
        } else {
            "alert-success"
        }
    }

    /// An error is announced at once; news waits its turn.
    pub fn role(&self) -> &'static str {
        if self.refusal {
            "alert"
        } else {
            "status"
        }
    }
}

impl std::fmt::Display for Flash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// News of something done, for the next page.
pub fn set_flash(session: &Session, message: impl Into<String>) {
    let flash = Flash {
        refusal: false,
        text: message.into(),
    };
    let _ = session.insert(FLASH, flash);
}

/// Why something was not done, for the next page.
pub fn set_refusal(session: &Session, message: impl Into<String>) {
    let flash = Flash {
        refusal: true,
        text: message.into(),
    };
    let _ = session.insert(FLASH, flash);
}

pub fn take_flash(session: &Session) -> Option<Flash> {
    session.remove_as::<Flash>(FLASH).and_then(Result::ok)
}

/// Something shown once, right after it is made (a new token, a set-password link). It rides
/// in the encrypted cookie to the page that shows it, beside a random key that the session's
/// row also holds; showing it clears the row's key in the same request. Reloading, going back
/// or replaying a copy of the cookie finds the row's key gone and shows nothing. The secret
/// itself is never stored server-side.
#[derive(Serialize, Deserialize)]
struct Showing<T> {
    key: String,
    value: T,
}

pub async fn stash_showing<T: Serialize>(
    db: &Db,
    current: &CurrentUser,
    value: T,
) -> Result<(), AppError> {
    let secret = session_secret(&current.session).ok_or(AppError::Forbidden)?;
    let key = Secret::generate(32).into_string();
    let showing = Showing {
        key: key.clone(),
        value,
    };
    current
        .session
        .insert(SHOWING, showing)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("session write failed: {e}")))?;
    db.write(move |conn| crate::sessions::expect_showing(conn, &secret, &key))
        .await?;
    Ok(())
}

/// The value stashed for one showing, if it has not been shown yet. A HEAD request shows
/// nothing (its body is dropped), so it looks without spending the one showing.
pub async fn take_showing<T: DeserializeOwned>(
    req: &HttpRequest,
    db: &Db,
    current: &CurrentUser,
) -> Result<Option<T>, AppError> {
    let head = req.method() == Method::HEAD;
    let showing = if head {
        current.session.get::<Showing<T>>(SHOWING).ok().flatten()
    } else {
        current
            .session
            .remove_as::<Showing<T>>(SHOWING)
            .and_then(Result::ok)
    };
    let Some(showing) = showing else {
        return Ok(None);
    };
    let secret = session_secret(&current.session).ok_or(AppError::Forbidden)?;
    let key = showing.key;
    let pending = if head {
        db.read(move |conn| crate::sessions::showing_pending(conn, &secret, &key))
            .await?
    } else {
        db.write(move |conn| crate::sessions::take_showing(conn, &secret, &key))
            .await?
    };
    Ok(pending.then_some(showing.value))
}

/// What waits for its one showing, without spending it: which page it belongs on.
pub fn peek_showing<T: DeserializeOwned>(current: &CurrentUser) -> Option<T> {
    let showing = current.session.get::<Showing<T>>(SHOWING).ok().flatten()?;
    Some(showing.value)
}

/// A new token waiting for its one showing (see [`stash_showing`]).
#[derive(Serialize, Deserialize)]
pub struct PendingReveal {
    pub token_id: i64,
    pub name: String,
    pub secret: String,
    pub regenerated: bool,
    /// Whose token: an application's (its id), or the person's own (`None`). It is shown on
    /// that shelf's reveal page only, under that shelf's name.
    #[serde(default)]
    pub application_id: Option<i64>,
    /// On a regenerate with an overlap: until when the replaced secret works (as shown).
    #[serde(default)]
    pub previous_until: Option<String>,
}

impl PendingReveal {
    pub fn of(created: &CreatedToken, regenerated: bool) -> Self {
        PendingReveal {
            token_id: created.token.id,
            name: created.token.name.clone(),
            secret: created.secret.expose().to_owned(),
            regenerated,
            application_id: created.token.application_id,
            previous_until: created
                .previous
                .as_ref()
                .map(|previous| crate::web::format::exact(previous.valid_until)),
        }
    }
}
