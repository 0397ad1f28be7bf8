use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::accounts::identity_provider::SignInMethods;
use crate::accounts::members::{self, Changed, FirstPassword, MemberError, NewMember};
use crate::accounts::passwords;
use crate::db::Db;
use crate::domain::{clean_name, Email, FieldErrors, PasswordRules, Role};
use crate::http::ClientIp;
use crate::http::{public_base_url, Site};
use crate::users::{self, Member, MemberFilter, User};
use crate::web::admin::AdminUser;
use crate::web::csrf::CsrfForm;
use crate::web::error::AppError;
use crate::web::format::{self, Pager};
use crate::web::layout::{render, render_with_status, Chrome, Section};
use crate::web::session::{set_flash, set_refusal, stash_showing, take_flash, take_showing, Flash};
use crate::web::{see_other, url_encode};

const PER_PAGE: i64 = 50;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    role: String,
    status: String,
    #[serde(default, deserialize_with = "crate::web::format::page_number")]
    page: Option<i64>,
}

pub struct MemberRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    pub active: bool,
    /// Added with a set-password link not used yet.
    pub invited: bool,
    pub is_self: bool,
    pub active_tokens: i64,
    pub last_sign_in: String,
    pub last_token_use: String,
    /// How they sign in: "Password", the provider's name, both, or "Not yet".
    pub signs_in_with: String,
    /// When the identity provider last vouched for them ("3 days ago").
    pub provider_confirmed: Option<String>,
}

/// How `user` can sign in here, in a word or two.
fn signs_in_with(user: &crate::users::User, provider: Option<&str>) -> String {
    let password = !user.password_never_set();
    match (password, user.provider_subject.is_some()) {
        (true, false) => "Password".into(),
        (false, true) => provider.unwrap_or("Identity provider").into(),
        (true, true) => format!("Password, {}", provider.unwrap_or("identity provider")),
        (false, false) => "Not yet".into(),
    }
}

#[derive(Template)]
#[template(path = "admin/members.html")]
struct MembersPage {
    chrome: Chrome,
    rows: Vec<MemberRow>,
    query: ListQuery,
    pager: Pager,
    flash: Option<Flash>,
    filtered: bool,
}

pub async fn list(
    db: web::Data<Db>,
    methods: web::Data<SignInMethods>,
    AdminUser(admin): AdminUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let provider = methods.provider.as_ref().map(|p| p.name.as_str());
    let filter = MemberFilter {
        search: query.q.clone(),
        role: query.role.parse().ok(),
        active: match query.status.as_str() {
            "active" => Some(true),
            "deactivated" => Some(false),
            _ => None,
        },
    };
    let requested = query.page.unwrap_or(1).max(1);
    let f = filter.clone();
    let (members, total) = db
        .run(move |conn| {
            let total = users::count_members(conn, &f)?;
            let offset = Pager::clamped_offset(requested, PER_PAGE, total);
            Ok((users::list_members(conn, &f, offset, PER_PAGE)?, total))
        })
        .await?;
    let params = format!(
        "q={}&role={}&status={}",
        url_encode(&query.q),
        url_encode(&query.role),
        url_encode(&query.status)
    );
    let pager = Pager::new(requested, PER_PAGE, total, |page| {
        format!("/admin/members?{params}&page={page}")
    });
    let now = Utc::now().naive_utc();
    let rows = members
        .into_iter()
        .map(
            |Member {
                 user,
                 active_tokens,
                 last_token_use,
             }| MemberRow {
                id: user.id,
                is_admin: user.is_admin(),
                active: user.is_active,
                // A member of the provider's needs no password.
                invited: user.password_never_set() && user.provider_subject.is_none(),
                signs_in_with: signs_in_with(&user, provider),
                provider_confirmed: user.provider_confirmed_at.map(|at| format::ago(at, now)),
                is_self: user.id == admin.user.id,
                last_sign_in: user
                    .last_sign_in_at
                    .map_or_else(|| "Never".into(), |at| format::ago(at, now)),
                last_token_use: last_token_use
                    .map_or_else(|| "Never".into(), |at| format::ago(at, now)),
                name: user.display_name,
                email: user.email,
                active_tokens,
            },
        )
        .collect();
    render(&MembersPage {
        chrome: Chrome::for_user(&admin, Section::MEMBERS),
        rows,
        filtered: !filter.search.trim().is_empty()
            || filter.role.is_some()
            || filter.active.is_some(),
        query,
        pager,
        flash: take_flash(&admin.session),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewMemberForm {
    email: String,
    display_name: String,
    role: String,
    method: String,
    password: String,
    password_confirm: String,
}

/// A new member as the form asks for them, every rule met; the password still in plaintext.
struct ParsedMember {
    email: Email,
    display_name: String,
    role: Role,
    /// `None`: a one-time link instead.
    password: Option<String>,
}

impl NewMemberForm {
    /// Every rule, every error at once.
    fn parse(&self) -> Result<ParsedMember, FieldErrors> {
        let mut errors = FieldErrors::default();
        let email = Email::parse(&self.email)
            .map_err(|e| errors.add("email", e))
            .ok();
        let display_name = clean_name(&self.display_name)
            .map_err(|e| errors.add("display_name", e))
            .ok();
        let role = self
            .role
            .parse::<Role>()
            .map_err(|_| errors.add("role", "Choose a role."))
            .ok();
        let password = match self.method.as_str() {
            "password" => {
                if let Err(e) = PasswordRules::check(&self.password) {
                    errors.add("password", e);
                }
                if self.password != self.password_confirm {
                    errors.add("password_confirm", "The passwords do not match.");
                }
                Some(self.password.clone())
            }
            "link" => None,
            _ => {
                errors.add("method", "Choose how the member gets a password.");
                None
            }
        };
        match (email, display_name, role) {
            (Some(email), Some(display_name), Some(role)) if errors.is_empty() => {
                Ok(ParsedMember {
                    email,
                    display_name,
                    role,
                    password,
                })
            }
            _ => Err(errors),
        }
    }
}

impl ParsedMember {
    /// The member to create, the password hashed (off the async workers).
    async fn hashed(self) -> anyhow::Result<NewMember> {
        let password = match self.password {
            Some(password) => FirstPassword::Hash(passwords::hash(password).await?),
            None => FirstPassword::Link,
        };
        Ok(NewMember {
            email: self.email,
            display_name: self.display_name,
            role: self.role,
            password,
        })
    }
}

#[derive(Template)]
#[template(path = "admin/member_new.html")]
struct NewMemberPage {
    chrome: Chrome,
    form: NewMemberForm,
    errors: FieldErrors,
}

pub async fn new_form(AdminUser(admin): AdminUser) -> Result<HttpResponse, AppError> {
    render(&NewMemberPage {
        chrome: Chrome::for_user(&admin, Section::MEMBERS),
        form: NewMemberForm {
            role: "user".into(),
            method: "link".into(),
            ..Default::default()
        },
        errors: FieldErrors::default(),
    })
}

pub async fn create(
    req: HttpRequest,
    db: web::Data<Db>,
    site: web::Data<Site>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    CsrfForm(form): CsrfForm<NewMemberForm>,
) -> Result<HttpResponse, AppError> {
    let rerender = |form: NewMemberForm, errors: FieldErrors| {
        render_with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewMemberPage {
                chrome: Chrome::for_user(&admin, Section::MEMBERS),
                form: NewMemberForm {
                    password: String::new(),
                    password_confirm: String::new(),
                    ..form
                },
                errors,
            },
        )
    };
    let new = match form.parse() {
        Ok(parsed) => parsed.hashed().await?,
        Err(errors) => return rerender(form, errors),
    };
    let created = match members::add(&db, admin.actor(&client_ip), new).await {
        Ok(created) => created,
        Err(taken @ MemberError::EmailTaken) => {
            return rerender(form, FieldErrors::one("email", taken.to_string()));
        }
        Err(other) => return Err(other.into()),
    };
    let user = created.user;
    match created.link_secret {
        Some(secret) => {
            let link = LinkShown::new(&req, &site, &user, &secret, true);
            stash_showing(&db, &admin, link).await?;
            Ok(see_other("/admin/members/link"))
        }
        None => {
            set_flash(
                &admin.session,
                format!("{} ({}) can now sign in.", user.display_name, user.email),
            );
            Ok(see_other("/admin/members"))
        }
    }
}

/// A set-password link waiting for its one showing to the admin who made it.
#[derive(Serialize, Deserialize)]
struct LinkShown {
    name: String,
    email: String,
    url: String,
    /// Made with the member, rather than for one who forgot their password.
    new_member: bool,
}

impl LinkShown {
    fn new(req: &HttpRequest, site: &Site, member: &User, secret: &str, new_member: bool) -> Self {
        LinkShown {
            name: member.display_name.clone(),
            email: member.email.clone(),
            url: format!("{}/set-password/{secret}", public_base_url(req, site)),
            new_member,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/member_link.html")]
struct LinkPage {
    chrome: Chrome,
    link: LinkShown,
    hours: i64,
}

/// The set-password link, shown once to the admin who made it.
pub async fn show_link(
    req: HttpRequest,
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
) -> Result<HttpResponse, AppError> {
    let Some(link) = take_showing::<LinkShown>(&req, &db, &admin).await? else {
        return Ok(see_other("/admin/members"));
    };
    render(&LinkPage {
        chrome: Chrome::for_user(&admin, Section::MEMBERS),
        link,
        hours: users::PASSWORD_LINK_HOURS,
    })
}

#[derive(Template)]
#[template(path = "admin/member_password_link.html")]
struct PasswordLinkPage {
    chrome: Chrome,
    member: User,
    hours: i64,
}

/// Asks before giving a member a new set-password link.
pub async fn confirm_password_link(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let member = member(&db, &id).await?;
    render(&PasswordLinkPage {
        chrome: Chrome::for_user(&admin, Section::MEMBERS),
        member,
        hours: users::PASSWORD_LINK_HOURS,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordLinkForm {}

pub async fn issue_password_link(
    req: HttpRequest,
    db: web::Data<Db>,
    site: web::Data<Site>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    id: web::Path<String>,
    CsrfForm(_): CsrfForm<PasswordLinkForm>,
) -> Result<HttpResponse, AppError> {
    let target_id = member_id(&id)?;
    let issued = members::issue_password_link(&db, admin.actor(&client_ip), target_id).await;
    match issued {
        Ok((member, secret)) => {
            let link = LinkShown::new(&req, &site, &member, &secret, false);
            stash_showing(&db, &admin, link).await?;
            Ok(see_other("/admin/members/link"))
        }
        Err(refusal) => {
            set_flash(&admin.session, refusal_message(refusal)?);
            Ok(see_other("/admin/members"))
        }
    }
}

fn member_id(raw_id: &str) -> Result<i64, AppError> {
    raw_id.parse().map_err(|_| AppError::NotFound)
}

async fn member(db: &Db, raw_id: &str) -> Result<User, AppError> {
    let id = member_id(raw_id)?;
    db.run(move |conn| users::find(conn, id))
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let target_id = member_id(&id)?;
    let role: Role = form
        .role
        .parse()
        .map_err(|_| AppError::BadRequest("unknown role".into()))?;
    let changed = members::change_role(&db, admin.actor(&client_ip), target_id, role).await;
    let message = match changed {
        Ok(Changed::Done(member)) => format!(
            "{} is now {} {}.",
            member.display_name,
            if role == Role::Admin { "an" } else { "a" },
            role
        ),
        Ok(Changed::AlreadySo(member)) => format!("{} already is {role}.", member.display_name),
        Err(refusal) => {
            set_refusal(&admin.session, refusal_message(refusal)?);
            return Ok(see_other("/admin/members"));
        }
    };
    set_flash(&admin.session, message);
    Ok(see_other("/admin/members"))
}

/// A refusal as the notice to show; anything else is an error page.
fn refusal_message(error: MemberError) -> Result<String, AppError> {
    match error {
        refusal @ (MemberError::LastAdmin(_)
        | MemberError::Yourself
        | MemberError::Deactivated(_)) => Ok(refusal.to_string()),
        other => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/member_status.html")]
struct StatusPage {
    chrome: Chrome,
    member: User,
    deactivate: bool,
}

fn status_change(change: &str) -> Result<bool, AppError> {
    match change {
        "deactivate" => Ok(true),
        "reactivate" => Ok(false),
        _ => Err(AppError::NotFound),
    }
}

pub async fn confirm_status(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, change) = path.into_inner();
    let deactivate = status_change(&change)?;
    let member = member(&db, &id).await?;
    render(&StatusPage {
        chrome: Chrome::for_user(&admin, Section::MEMBERS),
        member,
        deactivate,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct StatusForm {}

pub async fn change_status(
    db: web::Data<Db>,
    AdminUser(admin): AdminUser,
    client_ip: ClientIp,
    path: web::Path<(String, String)>,
    CsrfForm(_): CsrfForm<StatusForm>,
) -> Result<HttpResponse, AppError> {
    let (id, change) = path.into_inner();
    let deactivate = status_change(&change)?;
    let target_id = member_id(&id)?;
    let changed = members::set_active(&db, admin.actor(&client_ip), target_id, !deactivate).await;
    let message = match changed {
        Ok(Changed::Done(member)) if deactivate => format!(
            "{} is deactivated: signed out everywhere, and all their tokens are refused.",
            member.display_name
        ),
        Ok(Changed::Done(member)) => format!(
            "{} is active again. Their revoked tokens stay revoked.",
            member.display_name
        ),
        Ok(Changed::AlreadySo(member)) => format!(
            "{} already is {}; nothing changed.",
            member.display_name,
            if deactivate { "deactivated" } else { "active" }
        ),
        Err(refusal) => {
            set_refusal(&admin.session, refusal_message(refusal)?);
            return Ok(see_other("/admin/members"));
        }
    };
    set_flash(&admin.session, message);
    Ok(see_other("/admin/members"))
}
