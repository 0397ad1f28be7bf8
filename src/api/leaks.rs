//! `POST /api/v1/credentials/revoke`: the public leak report, open to anyone.

use std::net::IpAddr;

use actix_web::web::{self, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::error::{ApiError, ErrorBody};
use crate::domain::FieldErrors;
use crate::http::ClientIp;
use crate::tokens::leaks::{self, LeakReportLimit, MAX_REPORTED};
use crate::tokens::Authenticator;

#[derive(Deserialize, ToSchema)]
pub struct LeakReport {
    /// Up to 100 strings found somewhere public; the ones that are not tokendesk tokens are
    /// ignored.
    tokens: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LeakReportReceived {
    /// How many items the report held: the same whatever they were.
    pub received: usize,
}

/// Report tokens found in public (a repository, a log, a paste): every live tokendesk token in
/// the report is revoked at once and its owner told why. No authentication; the answer is the
/// same whatever was sent, so it says nothing about which tokens were real.
#[utoipa::path(post, path = "/api/v1/credentials/revoke", tag = "leaks", request_body = LeakReport,
    responses(
        (status = 202, description = "Received; every live token in it is revoked", body = LeakReportReceived),
        (status = 422, description = "More than 100 items", body = ErrorBody),
        (status = 429, description = "Too many reports from this address; see Retry-After", body = ErrorBody),
    ))]
pub async fn report(
    req: HttpRequest,
    limit: web::Data<LeakReportLimit>,
    body: Json<LeakReport>,
) -> Result<HttpResponse, ApiError> {
    let client_ip = ClientIp::of_request(&req);
    let clock = &req
        .app_data::<web::Data<Authenticator>>()
        .ok_or(ApiError::Internal)?
        .clock;
    if let Ok(ip) = client_ip.0.parse::<IpAddr>() {
        if let Some(wait) = limit.0.blocked_for(ip, clock.instant()) {
            return Err(ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + 1,
            });
        }
        limit.0.record_failure(ip, clock.instant());
    }
    let reported = body.into_inner().tokens;
    if reported.len() > MAX_REPORTED {
        return Err(ApiError::Validation(FieldErrors::one(
            "tokens",
            format!("Send at most {MAX_REPORTED} tokens a report."),
        )));
    }
    let db = req
        .app_data::<web::Data<crate::db::Db>>()
        .ok_or(ApiError::Internal)?;
    let outbox = req
        .app_data::<web::Data<crate::notifications::Outbox>>()
        .ok_or(ApiError::Internal)?;
    let revoked = leaks::revoke_reported(db, *outbox.get_ref(), &reported, &client_ip.0).await?;
    tracing::info!(received = reported.len(), revoked, "leak report");
    Ok(HttpResponse::Accepted().json(LeakReportReceived {
        received: reported.len(),
    }))
}
