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
            if !decodes_to_text(&body) {
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

/// Whether every name and value of a urlencoded body is text once decoded: UTF-8 without NUL.
/// The form parser would quietly turn other bytes into U+FFFD, and PostgreSQL refuses NUL in
/// text; refusing up front is clearer than either.
pub(crate) fn decodes_to_text(body: &[u8]) -> bool {
    body.split(|&b| b == b'&' || b == b'=').all(|part| {
        let mut decoded = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match part[i] {
                b'%' if i + 2 < part.len() => match (hex(part[i + 1]), hex(part[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        decoded.push((hi * 16 + lo) as u8);
                        i += 3;
                        continue;
                    }
                    _ => decoded.push(b'%'),
                },
                byte => decoded.push(byte),
            }
            i += 1;
        }
        !decoded.contains(&0) && std::str::from_utf8(&decoded).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::decodes_to_text;

    #[test]
    fn refuses_bodies_that_decode_to_invalid_utf8_or_nul() {
        assert!(decodes_to_text(b"name=caf%C3%A9&scopes=tag%3Aread&x=100%"));
        assert!(decodes_to_text(b"a=%zz&b=%4"));
        assert!(!decodes_to_text(b"name=%FF%FE"));
        assert!(!decodes_to_text(b"name=%C3"));
        assert!(!decodes_to_text(&[b'n', b'=', 0xff]));
        assert!(!decodes_to_text(b"name=a%00b"));
    }
}
