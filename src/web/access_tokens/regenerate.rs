use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::db::Db;
use crate::domain::Policy;
use crate::domain::{parse_allowlist, parse_expiry, FieldErrors, Overlap};
use crate::http::ClientIp;
use crate::tokens::actions::{self, NewExpiry, Rotation, Rotator, TokenError};
use crate::tokens::{store, PersonalAccessToken, PreviousSecret, TokenStatus};
use crate::web::access_tokens::list::PreviousView;
use crate::web::access_tokens::{refusal_errors, ExpiryField, Shelf, TokenPath};
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::layout::{render_with_status, Chrome};
use crate::web::see_other;
use crate::web::session::{set_refusal, stash_showing, PendingReveal};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RegenerateForm {
    expires_in: String,
    expires_on: String,
    /// An `Overlap` value.
    overlap: String,
    allowed_addresses: String,
}

#[derive(Template)]
#[template(path = "access_tokens/regenerate.html")]
struct RegeneratePage {
    chrome: Chrome,
    shelf: Shelf,
    token: PersonalAccessToken,
    scopes: Vec<&'static str>,
    input: RegenerateForm,
    errors: FieldErrors,
    expiry: ExpiryField,
    overlaps: [Overlap; 4],
    /// Expired already: its secret stopped working then, not now.
    expired: bool,
    allowlist_required: bool,
    regenerating: bool,
    /// A previous secret still working, which regenerating stops.
    previous: Option<PreviousView>,
}

fn page(
    shelf: Shelf,
    policy: &Policy,
    (token, previous): Regenerable,
    input: RegenerateForm,
    errors: FieldErrors,
) -> RegeneratePage {
    let now = Utc::now().naive_utc();
    RegeneratePage {
        previous: previous.map(|previous| PreviousView::new(&previous, now)),
        chrome: shelf.chrome(),
        shelf,
        scopes: token.scopes().iter().map(|s| s.name()).collect(),
        expired: token.expires_at.is_some_and(|at| at <= now),
        token,
        input,
        errors,
        expiry: ExpiryField::new(policy, now),
        overlaps: Overlap::ALL,
        allowlist_required: policy.write_requires_allowlist,
        regenerating: true,
    }
}

/// A token to regenerate, and its previous secret if one still works.
type Regenerable = (PersonalAccessToken, Option<PreviousSecret>);

/// One of the shelf's tokens that can be regenerated; `None` (with a notice for the list)
/// when it is revoked.
async fn regenerable(db: &Db, shelf: &Shelf, id: &str) -> Result<Option<Regenerable>, AppError> {
    let token = shelf.token(db, id).await?;
    if token.revoked_at.is_some() {
        set_refusal(
            &shelf.current.session,
            format!("“{}” is revoked and cannot be regenerated.", token.name),
        );
        return Ok(None);
    }
    let token_id = token.id;
    let previous = db
        .read(move |conn| store::previous_secret(conn, token_id))
        .await?;
    Ok(Some((token, previous)))
}

pub async fn show(
    db: web::Data<Db>,
    shelf: Shelf,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let Some(found) = regenerable(&db, &shelf, &path.id).await? else {
        return Ok(see_other(&shelf.base));
    };
    let token = &found.0;
    let policy = shelf.rules(&crate::policy::current(&db).await?);
    let input = RegenerateForm {
        expires_in: policy.default_expiry.value().to_owned(),
        expires_on: String::new(),
        overlap: Overlap::None.value().to_owned(),
        allowed_addresses: token
            .allowlist()
            .map(|list| list.entries().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default(),
    };
    render_with_status(
        StatusCode::OK,
        &page(shelf, &policy, found, input, FieldErrors::default()),
    )
}

pub async fn submit(
    db: web::Data<Db>,
    CsrfForm(input): CsrfForm<RegenerateForm>,
    shelf: Shelf,
    client_ip: ClientIp,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, AppError> {
    let Some(found) = regenerable(&db, &shelf, &path.id).await? else {
        return Ok(see_other(&shelf.base));
    };
    let token = &found.0;
    let policy = shelf.rules(&crate::policy::current(&db).await?);
    let rotation = match parse(&input, &policy, token.status(Utc::now().naive_utc())) {
        Ok(rotation) => rotation,
        Err(errors) => {
            return render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(shelf, &policy, found, input, errors),
            );
        }
    };
    let regenerated = actions::regenerate(
        &db,
        Rotator::Person(shelf.current.actor(&client_ip)),
        token.owner(),
        token.id,
        rotation,
    )
    .await;
    let created = match regenerated {
        Ok(created) => created,
        Err(TokenError::Revoked) => {
            set_refusal(
                &shelf.current.session,
                format!(
                    "“{}” was revoked meanwhile; nothing was regenerated.",
                    token.name
                ),
            );
            return Ok(see_other(&shelf.base));
        }
        Err(refusal) => {
            let errors = refusal_errors(refusal)?;
            return render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(shelf, &policy, found, input, errors),
            );
        }
    };
    stash_showing(&db, &shelf.current, PendingReveal::of(&created, true)).await?;
    Ok(see_other(&shelf.at("/reveal")))
}

/// Every field's rules, every error at once. An expired token's secret stopped working already:
/// there is nothing to keep working, so it gets no overlap.
fn parse(
    input: &RegenerateForm,
    policy: &Policy,
    status: TokenStatus,
) -> Result<Rotation, FieldErrors> {
    let mut errors = FieldErrors::default();
    let expiry = parse_expiry(
        &input.expires_in,
        &input.expires_on,
        Utc::now().naive_utc(),
        policy,
    )
    .map_err(|(field, message)| errors.add(field, message))
    .ok();
    let overlap = input
        .overlap
        .parse::<Overlap>()
        .map_err(|message| errors.add("overlap", message))
        .ok();
    let allowed_addresses = parse_allowlist(&input.allowed_addresses)
        .map_err(|(field, message)| errors.add(field, message))
        .ok();
    match (expiry, overlap, allowed_addresses) {
        (Some(expiry), Some(overlap), Some(allowed_addresses)) => Ok(Rotation {
            expiry: NewExpiry::Chosen(expiry),
            overlap: if status == TokenStatus::Active {
                overlap
            } else {
                Overlap::None
            },
            allowed_addresses: Some(allowed_addresses),
            replacing: None,
        }),
        _ => Err(errors),
    }
}
