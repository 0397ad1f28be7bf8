//! Admin → Applications: create, rename and archive applications, and name their maintainers.
//! Their tokens are managed on the Developer pages every maintainer uses too.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::accounts::applications::{self as service, ApplicationError};
use crate::applications::{self, Application, Listed};
use crate::db::Db;
use crate::domain::{ApplicationInput, Email, FieldErrors};
use crate::http::ClientIp;
use crate::users::User;
use crate::web::access_tokens::revoke::{RevokeForm, CONFIRMATION, CONFIRMATION_ERROR};
use crate::web::admin::AdminUser;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format;
use crate::web::layout::{render_with_status, Chrome, Section};
use crate::web::see_other;
use crate::web::session::{set_flash, take_flash, CurrentUser, Flash};

/// An application as a row of a list (here and on Developer → Applications).
pub struct ApplicationRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub active_tokens: i64,
    pub last_used: String,
    pub last_used_exact: String,
}

impl ApplicationRow {
    pub fn new(listed: &Listed) -> Self {
        let now = Utc::now().naive_utc();
        ApplicationRow {
            id: listed.application.id,
            name: listed.application.name.clone(),
            description: listed.application.description.clone(),
            active_tokens: listed.active_tokens,
            last_used: listed
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| format::ago(at, now)),
            last_used_exact: listed.last_used_at.map(format::exact).unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    archived: String,
}

#[derive(Template)]
#[template(path = "admin/applications.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<ApplicationRow>,
    archived: bool,
    form: ApplicationInput,
    errors: FieldErrors,
    flash: Option<Flash>,
}

async fn list_page(
    db: &Db,
    admin: &CurrentUser,
    archived: bool,
    form: ApplicationInput,
    errors: FieldErrors,
) -> Result<ListPage, AppError> {
    let scope = if archived {
        applications::Scope::Archived
    } else {
        applications::Scope::All
    };
    let found = db.run(move |conn| applications::list(conn, scope)).await?;
    Ok(ListPage {
        chrome: Chrome::for_user(admin, Section::ADMIN_APPLICATIONS),
        rows: found.iter().map(ApplicationRow::new).collect(),
        archived,
        form,
        errors,
        flash: take_flash(&admin.session),
    })
}

pub async fn list(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let archived = query.archived == "1";
    let page = list_page(
        &db,
        &admin,
        archived,
        Default::default(),
        Default::default(),
    )
    .await?;
    render_with_status(StatusCode::OK, &page)
}

/// The field errors a refusal shows on a form; what no field can show is an error page.
fn refusal_errors(refusal: ApplicationError) -> Result<FieldErrors, AppError> {
    match refusal {
        ApplicationError::NotFound => Err(AppError::NotFound),
        ApplicationError::NoLongerAdmin => Err(AppError::Forbidden),
        ApplicationError::Db(e) => Err(e.into()),
        refusal => Ok(FieldErrors::one(
            refusal.field().unwrap_or("form"),
            refusal.to_string(),
        )),
    }
}

pub async fn create(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<ApplicationInput>,
) -> Result<HttpResponse, AppError> {
    let refused = match form.parse() {
        Ok(details) => match service::create(&db, admin.actor(&client_ip), details).await {
            Ok(application) => {
                set_flash(
                    &admin.session,
                    format!(
                        "Application “{}” created. Name its maintainers, or create its first token.",
                        application.name
                    ),
                );
                return Ok(see_other(&format!(
                    "/admin/applications/{}",
                    application.id
                )));
            }
            Err(refusal) => refusal_errors(refusal)?,
        },
        Err(errors) => errors,
    };
    let page = list_page(&db, &admin, false, form, refused).await?;
    render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Template)]
#[template(path = "admin/application.html")]
struct DetailPage {
    chrome: Chrome,
    application: Application,
    maintainers: Vec<User>,
    form: ApplicationInput,
    maintainer_email: String,
    errors: FieldErrors,
    flash: Option<Flash>,
}

async fn find(db: &Db, raw_id: &str) -> Result<(Application, Vec<User>), AppError> {
    let id: i64 = raw_id.parse().map_err(|_| AppError::NotFound)?;
    db.run(move |conn| {
        let Some(application) = applications::find(conn, id)? else {
            return Ok(None);
        };
        Ok(Some((application, applications::maintainers(conn, id)?)))
    })
    .await?
    .ok_or(AppError::NotFound)
}

async fn detail_page(
    db: &Db,
    admin: &CurrentUser,
    raw_id: &str,
    form: Option<ApplicationInput>,
    maintainer_email: String,
    errors: FieldErrors,
) -> Result<DetailPage, AppError> {
    let (application, maintainers) = find(db, raw_id).await?;
    Ok(DetailPage {
        chrome: Chrome::for_user(admin, Section::ADMIN_APPLICATIONS),
        form: form.unwrap_or_else(|| ApplicationInput {
            name: application.name.clone(),
            description: application.description.clone(),
        }),
        application,
        maintainers,
        maintainer_email,
        errors,
        flash: take_flash(&admin.session),
    })
}

/// The application's id in the path (and a member's, to remove a maintainer).
#[derive(Deserialize)]
pub struct ApplicationPath {
    app: String,
    #[serde(default)]
    user: String,
}

pub async fn show(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    path: web::Path<ApplicationPath>,
) -> Result<HttpResponse, AppError> {
    let page = detail_page(
        &db,
        &admin,
        &path.app,
        None,
        String::new(),
        Default::default(),
    )
    .await?;
    render_with_status(StatusCode::OK, &page)
}

fn app_id(path: &ApplicationPath) -> Result<i64, AppError> {
    path.app.parse().map_err(|_| AppError::NotFound)
}

pub async fn rename(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    path: web::Path<ApplicationPath>,
    CsrfForm(form): CsrfForm<ApplicationInput>,
) -> Result<HttpResponse, AppError> {
    let id = app_id(&path)?;
    let errors = match form.parse() {
        Ok(details) => match service::rename(&db, admin.actor(&client_ip), id, details).await {
            Ok(application) => {
                set_flash(&admin.session, format!("Saved “{}”.", application.name));
                return Ok(see_other(&format!("/admin/applications/{id}")));
            }
            Err(refusal) => refusal_errors(refusal)?,
        },
        Err(errors) => errors,
    };
    let page = detail_page(&db, &admin, &path.app, Some(form), String::new(), errors).await?;
    render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MaintainerForm {
    email: String,
}

pub async fn add_maintainer(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    path: web::Path<ApplicationPath>,
    CsrfForm(form): CsrfForm<MaintainerForm>,
) -> Result<HttpResponse, AppError> {
    let id = app_id(&path)?;
    let errors = match Email::parse(&form.email) {
        Ok(email) => {
            let shown = email.as_str().to_owned();
            match service::add_maintainer(&db, admin.actor(&client_ip), id, email).await {
                Ok(added) => {
                    let message = if added {
                        format!("{shown} now maintains this application and may manage its tokens.")
                    } else {
                        format!("{shown} already maintains this application.")
                    };
                    set_flash(&admin.session, message);
                    return Ok(see_other(&format!("/admin/applications/{id}")));
                }
                Err(refusal) => refusal_errors(refusal)?,
            }
        }
        Err(message) => FieldErrors::one("email", message),
    };
    let page = detail_page(&db, &admin, &path.app, None, form.email, errors).await?;
    render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn remove_maintainer(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    path: web::Path<ApplicationPath>,
    CsrfForm(_): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let id = app_id(&path)?;
    let user_id: i64 = path.user.parse().map_err(|_| AppError::NotFound)?;
    let removed = service::remove_maintainer(&db, admin.actor(&client_ip), id, user_id)
        .await
        .map_err(|refusal| refusal_errors(refusal).err().unwrap_or(AppError::Forbidden))?;
    let message = if removed {
        "The maintainer was removed: they can no longer manage this application's tokens. The tokens keep working."
    } else {
        "They were not a maintainer."
    };
    set_flash(&admin.session, message);
    Ok(see_other(&format!("/admin/applications/{id}")))
}

#[derive(Template)]
#[template(path = "admin/application_archive.html")]
struct ArchivePage {
    chrome: Chrome,
    application: Application,
    active_tokens: i64,
    error: Option<&'static str>,
}

async fn archive_page(
    db: &Db,
    admin: &CurrentUser,
    raw_id: &str,
    error: Option<&'static str>,
) -> Result<ArchivePage, AppError> {
    let (application, _) = find(db, raw_id).await?;
    let owner = crate::tokens::TokenOwner::Application(application.id);
    let counts = db
        .run(move |conn| crate::tokens::store::count_owned(conn, owner))
        .await?;
    Ok(ArchivePage {
        chrome: Chrome::for_user(admin, Section::ADMIN_APPLICATIONS),
        active_tokens: counts.of(crate::tokens::Tab::Active),
        application,
        error,
    })
}

pub async fn confirm_archive(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    path: web::Path<ApplicationPath>,
) -> Result<HttpResponse, AppError> {
    let page = archive_page(&db, &admin, &path.app, None).await?;
    if page.application.is_archived() {
        set_flash(&admin.session, "This application is archived already.");
        return Ok(see_other("/admin/applications?archived=1"));
    }
    render_with_status(StatusCode::OK, &page)
}

pub async fn archive(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    path: web::Path<ApplicationPath>,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let id = app_id(&path)?;
    if form.confirm != CONFIRMATION {
        let page = archive_page(&db, &admin, &path.app, Some(CONFIRMATION_ERROR)).await?;
        return render_with_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let message = match service::archive(&db, admin.actor(&client_ip), id).await {
        Ok(revoked) => format!(
            "The application was archived and its {} revoked.",
            format::plural(revoked as i64, "token")
        ),
        Err(ApplicationError::Archived) => "This application is archived already.".to_owned(),
        Err(refusal) => return Err(refusal_errors(refusal).err().unwrap_or(AppError::Forbidden)),
    };
    set_flash(&admin.session, message);
    Ok(see_other("/admin/applications"))
}
