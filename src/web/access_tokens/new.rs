use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::db::Db;
use crate::domain::Policy;
use crate::domain::{FieldErrors, TokenRequestInput};
use crate::http::ClientIp;
use crate::notifications::Outbox;
use crate::tokens::actions::{self, Origin};
use crate::web::access_tokens::{
    error_links, refusal_errors, scope_groups, ErrorLink, ExpiryField, ScopeGroup, Shelf,
};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render_with_status, Chrome};
use crate::web::see_other;
use crate::web::session::{stash_showing, PendingReveal};

#[derive(Template)]
#[template(path = "access_tokens/new.html")]
struct NewTokenPage {
    chrome: Chrome,
    shelf: Shelf,
    input: TokenRequestInput,
    errors: FieldErrors,
    expiry: ExpiryField,
    error_links: Vec<ErrorLink>,
    groups: Vec<ScopeGroup>,
    role: &'static str,
    /// The policy requires an allowlist for write scopes.
    allowlist_required: bool,
    /// The expiry field's wording: a new token's expiry is fixed once made.
    regenerating: bool,
}

fn page(
    shelf: Shelf,
    policy: &Policy,
    input: TokenRequestInput,
    errors: FieldErrors,
) -> NewTokenPage {
    NewTokenPage {
        chrome: shelf.chrome(),
        groups: scope_groups(shelf.allowed, &input.scopes),
        input,
        error_links: error_links(
            &errors,
            &[
                ("form", "name"),
                ("name", "name"),
                ("expires_in", "expires_in"),
                ("expires_on", "expires_on"),
                ("scopes", "scopes"),
                ("allowed_addresses", "allowed_addresses"),
            ],
        ),
        allowlist_required: policy.write_requires_allowlist,
        regenerating: false,
        errors,
        expiry: ExpiryField::new(policy, Utc::now().naive_utc()),
        role: shelf.current.user.role().label(),
        shelf,
    }
}

pub async fn show(db: web::Data<Db>, shelf: Shelf) -> Result<HttpResponse, AppError> {
    let policy = shelf.rules(&crate::policy::current(&db).await?);
    let input = TokenRequestInput::with_defaults(&policy);
    let page = page(shelf, &policy, input, FieldErrors::default());
    render_with_status(StatusCode::OK, &page)
}

pub async fn submit(
    db: web::Data<Db>,
    outbox: web::Data<Outbox>,
    CsrfForm(input): CsrfForm<TokenRequestInput>,
    shelf: Shelf,
    client_ip: ClientIp,
) -> Result<HttpResponse, AppError> {
    let policy = shelf.rules(&crate::policy::current(&db).await?);
    let request = match input.parse(&shelf.limit(), Utc::now().naive_utc(), &policy) {
        Ok(request) => request,
        Err(errors) => {
            return render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(shelf, &policy, input, errors),
            )
        }
    };
    let actor = shelf.current.actor(&client_ip);
    let created = actions::create(&db, **outbox, actor, shelf.owner, request, Origin::Portal).await;
    match created {
        Ok(created) => {
            stash_showing(&db, &shelf.current, PendingReveal::of(&created, false)).await?;
            Ok(see_other(&shelf.at("/reveal")))
        }
        Err(refusal) => {
            let errors = refusal_errors(refusal)?;
            render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(shelf, &policy, input, errors),
            )
        }
    }
}
