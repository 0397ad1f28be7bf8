//! Probes for load balancers: /healthz says the process answers, /readyz that it can work.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db::Db;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(db: web::Data<Db>) -> HttpResponse {
    match db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "not_ready", "database": "unreachable" }))
        }
    }
}
