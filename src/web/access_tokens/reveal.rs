use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::db::Db;
use crate::http::Site;
use crate::web::access_tokens::Shelf;
use crate::web::error::AppError;
use crate::web::layout::{render, Chrome};
use crate::web::see_other;
use crate::web::session::{peek_showing, set_refusal, take_showing, PendingReveal};
use crate::web::HOME;

#[derive(Template)]
#[template(path = "access_tokens/reveal.html")]
struct RevealPage {
    chrome: Chrome,
    shelf: Shelf,
    name: String,
    secret: String,
    regenerated: bool,
    previous_until: Option<String>,
    base_url: String,
}

pub async fn show(
    req: HttpRequest,
    db: web::Data<Db>,
    site: web::Data<Site>,
    shelf: Shelf,
) -> Result<HttpResponse, AppError> {
    // Another shelf's token is shown on its own shelf, under its own name: never on this one,
    // where the page would say it is this application's (or the person's own).
    let this_shelf = shelf.application.as_ref().map(|a| a.id);
    if let Some(pending) = peek_showing::<PendingReveal>(&shelf.current) {
        if pending.application_id != this_shelf {
            return Ok(see_other(&match pending.application_id {
                Some(id) => format!("/developer/applications/{id}/tokens/reveal"),
                None => format!("{HOME}/reveal"),
            }));
        }
    }
    let Some(reveal) = take_showing::<PendingReveal>(&req, &db, &shelf.current).await? else {
        set_refusal(
            &shelf.current.session,
            "A token is shown only once, right after it is created. If you lost it, regenerate it.",
        );
        return Ok(see_other(&shelf.base));
    };
    let base_url = crate::http::public_base_url(&req, &site);
    // Pages are no-store already (security headers); this one shows a secret, so say it here too.
    let mut response = render(&RevealPage {
        chrome: shelf.chrome(),
        name: reveal.name,
        secret: reveal.secret,
        regenerated: reveal.regenerated,
        previous_until: reveal.previous_until,
        base_url,
        shelf,
    })?;
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
