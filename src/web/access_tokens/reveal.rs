use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::db::Db;
use crate::http::Site;
use crate::web::error::AppError;
use crate::web::layout::{render, Chrome, Section};
use crate::web::session::{set_refusal, take_showing, CurrentUser, PendingReveal};
use crate::web::{see_other, HOME};

#[derive(Template)]
#[template(path = "access_tokens/reveal.html")]
struct RevealPage {
    chrome: Chrome,
    name: String,
    secret: String,
    regenerated: bool,
    base_url: String,
}

pub async fn show(
    req: HttpRequest,
    db: web::Data<Db>,
    site: web::Data<Site>,
    current: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let Some(reveal) = take_showing::<PendingReveal>(&req, &db, &current).await? else {
        set_refusal(
            &current.session,
            "A token is shown only once, right after it is created. If you lost it, regenerate it.",
        );
        return Ok(see_other(HOME));
    };
    let base_url = crate::http::public_base_url(&req, &site);
    // Pages are no-store already (security headers); this one shows a secret, so say it here too.
    let mut response = render(&RevealPage {
        chrome: Chrome::for_user(&current, Section::ACCESS_TOKENS),
        name: reveal.name,
        secret: reveal.secret,
        regenerated: reveal.regenerated,
        base_url,
    })?;
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
