//! `CsrfForm<T>`: the one way a state-changing form reaches a handler. The token is checked
//! before the form is even parsed, so a forged request changes nothing.

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::web::error::AppError;
use crate::web::session::csrf_matches;

pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|e| match e.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => AppError::PayloadTooLarge,
                _ => AppError::BadRequest("the form body could not be read".into()),
            })?;
            let presented = serde_html_form::from_bytes::<CsrfField>(&body)
                .map(|field| field.csrf_token)
                .unwrap_or_default();
            if !csrf_matches(&session, &presented) {
                return Err(AppError::CsrfRejected);
            }
            if !crate::http::decodes_to_text(&body) {
                return Err(AppError::BadRequest(
                    "the form holds bytes that are not text (invalid UTF-8, or NUL)".into(),
                ));
            }
            serde_html_form::from_bytes(&body)
                .map(CsrfForm)
                .map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))
        })
    }
}
