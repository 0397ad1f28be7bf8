use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;

use crate::db::Db;
use crate::domain::Policy;
use crate::domain::{FieldErrors, ScopeLimit, ScopeSet, TokenRequestInput};
use crate::http::ClientIp;
use crate::tokens::actions::{self, Origin};
use crate::tokens::TokenOwner;
use crate::web::access_tokens::{
    error_links, refusal_errors, scope_groups, ErrorLink, ExpiryField, ScopeGroup,
};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render_with_status, Chrome, Section};
use crate::web::see_other;
use crate::web::session::{stash_showing, CurrentUser, PendingReveal};

#[derive(Template)]
#[template(path = "access_tokens/new.html")]
struct NewTokenPage {
    chrome: Chrome,
    input: TokenRequestInput,
    errors: FieldErrors,
    expiry: ExpiryField,
    error_links: Vec<ErrorLink>,
    groups: Vec<ScopeGroup>,
    role: &'static str,
}

fn page(
    current: &CurrentUser,
    policy: &Policy,
    input: TokenRequestInput,
    errors: FieldErrors,
) -> NewTokenPage {
    NewTokenPage {
        chrome: Chrome::for_user(current, Section::ACCESS_TOKENS),
        groups: scope_groups(ScopeSet::allowed_for(current.user.role()), &input.scopes),
        input,
        error_links: error_links(
            &errors,
            &[
                ("form", "name"),
                ("name", "name"),
                ("expires_in", "expires_in"),
                ("expires_on", "expires_on"),
                ("scopes", "scopes"),
            ],
        ),
        errors,
        expiry: ExpiryField::new(policy, Utc::now().naive_utc()),
        role: current.user.role().label(),
    }
}

pub async fn show(db: web::Data<Db>, current: CurrentUser) -> Result<HttpResponse, AppError> {
    let policy = crate::policy::current(&db).await?;
    let input = TokenRequestInput::with_defaults(&policy);
    let page = page(&current, &policy, input, FieldErrors::default());
    render_with_status(StatusCode::OK, &page)
}

pub async fn submit(
    db: web::Data<Db>,
    current: CurrentUser,
    client_ip: ClientIp,
    CsrfForm(input): CsrfForm<TokenRequestInput>,
) -> Result<HttpResponse, AppError> {
    let policy = crate::policy::current(&db).await?;
    let request = match input.parse(
        &ScopeLimit::Role(current.user.role()),
        Utc::now().naive_utc(),
        &policy,
    ) {
        Ok(request) => request,
        Err(errors) => {
            return render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(&current, &policy, input, errors),
            )
        }
    };
    let owner = TokenOwner::Person(current.user.id);
    let created = actions::create(
        &db,
        current.actor(&client_ip),
        owner,
        request,
        Origin::Portal,
    )
    .await;
    match created {
        Ok(created) => {
            stash_showing(&db, &current, PendingReveal::of(&created, false)).await?;
            Ok(see_other("/developer/access-tokens/reveal"))
        }
        Err(refusal) => {
            let errors = refusal_errors(refusal)?;
            render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(&current, &policy, input, errors),
            )
        }
    }
}
