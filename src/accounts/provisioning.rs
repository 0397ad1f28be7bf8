//! Members provisioned by the company's identity provider (SCIM): made, changed, deactivated
//! and reactivated by an application token holding `scim:write`. Each change is one
//! transaction with its audit event, under the same locks as an admin's change, and re-reads
//! the token inside it: a revoke, a narrowing or a policy change committed after the request
//! was let in still stops it.

use crate::accounts::members::{guard_last_admin, reread, write_active, MemberError};
use crate::audit::{Action, Event};
use crate::db::{lock, lock_shared, refuse, Abort, AnyConnection, Db, DbError, Lock};
use crate::domain::scim::{UserChanges, UserFilter, UserResource};
use crate::domain::{Role, Scope};
use crate::tokens::store::{active_scopes_locked, TokenOwner};
use crate::users::{self, CreateUserError, NewUser, ProvisionedFields, User};

/// The application token a provisioning request came with.
#[derive(Clone, Debug)]
pub struct Provisioner {
    pub application_id: i64,
    pub application_name: String,
    pub token_id: i64,
    pub client_ip: String,
}

impl Provisioner {
    fn event(&self, action: Action) -> Event<'_> {
        Event::new(action, None).client_ip(&self.client_ip)
    }

    fn by(&self) -> String {
        format!(
            "by SCIM: application {} (token #{})",
            self.application_name, self.token_id
        )
    }
}

/// The members a provider's list asks for: 1-based `start_index`, at most `count`.
pub async fn list(
    db: &Db,
    filter: UserFilter,
    start_index: i64,
    count: i64,
) -> Result<(i64, Vec<User>), DbError> {
    db.read(move |conn| users::list_provisioned(conn, &filter, start_index - 1, count))
        .await
}

pub async fn find(db: &Db, id: i64) -> Result<Option<User>, DbError> {
    db.read(move |conn| users::find(conn, id)).await
}

/// Makes a member (role user, no password: they sign in through the provider, or an admin
/// sends them a set-password link).
pub async fn create(db: &Db, by: Provisioner, resource: UserResource) -> Result<User, MemberError> {
    db.transact(move |conn| {
        lock(conn, Lock::Members)?;
        check_provisioner(conn, &by)?;
        if let Some(id) = &resource.external_id {
            if users::external_id_taken(conn, id, None)? {
                return refuse(MemberError::ExternalIdTaken);
            }
        }
        let created = users::create(
            conn,
            NewUser {
                email: &resource.email,
                display_name: &resource.display_name,
                password_hash: None,
                role: Role::User,
            },
        );
        let user = match created {
            Ok(user) => user,
            Err(CreateUserError::EmailTaken) => return refuse(MemberError::EmailTaken),
            Err(CreateUserError::Query(e)) => return Err(e.into()),
        };
        let fields = ProvisionedFields::new(None, None, Some(resource.external_id.as_deref()));
        users::update_provisioned(conn, user.id, &fields).map_err(query_error)?;
        by.event(Action::MemberCreated)
            .target("user", Some(user.id), &user.email)
            .details(format!("role=user; password=none; {}", by.by()))
            .record(conn)?;
        if resource.active == Some(false) {
            let action = write_active(conn, user.id, false)?;
            by.event(action)
                .target("user", Some(user.id), &user.email)
                .details(by.by())
                .record(conn)?;
        }
        Ok(reread(conn, user.id)?)
    })
    .await
}

/// Applies a provider's changes (PATCH, PUT, DELETE) to a member.
pub async fn change(
    db: &Db,
    by: Provisioner,
    target_id: i64,
    changes: UserChanges,
) -> Result<User, MemberError> {
    db.transact(move |conn| {
        lock(conn, Lock::Members)?;
        // Tokens are made under this lock, against the owner's status read there.
        lock(conn, Lock::TokensOf(target_id))?;
        check_provisioner(conn, &by)?;
        let Some(target) = users::find(conn, target_id)? else {
            return refuse(MemberError::NotFound);
        };
        let mut changed = Vec::new();
        let email = changes
            .email
            .as_ref()
            .filter(|email| email.as_str() != target.email);
        if email.is_some() {
            changed.push("email");
        }
        // Removed: named by their address, as when made without a name.
        let named = changes
            .display_name
            .as_ref()
            .map(|name| name.clone().unwrap_or_else(|| target.email.clone()));
        let display_name = named.as_deref().filter(|name| *name != target.display_name);
        if display_name.is_some() {
            changed.push("display name");
        }
        let external_id = changes
            .external_id
            .as_ref()
            .map(Option::as_deref)
            .filter(|id| *id != target.external_id.as_deref());
        if let Some(Some(id)) = external_id {
            if users::external_id_taken(conn, id, Some(target.id))? {
                return refuse(MemberError::ExternalIdTaken);
            }
        }
        if external_id.is_some() {
            changed.push("externalId");
        }
        if !changed.is_empty() {
            let fields = ProvisionedFields::new(email, display_name, external_id);
            match users::update_provisioned(conn, target.id, &fields) {
                Ok(()) => {}
                Err(CreateUserError::EmailTaken) => return refuse(MemberError::EmailTaken),
                Err(CreateUserError::Query(e)) => return Err(e.into()),
            }
            let mut details = format!("changed {}", changed.join(", "));
            if let Some(email) = email {
                details.push_str(&format!("; email {} -> {}", target.email, email.as_str()));
            }
            by.event(Action::MemberUpdated)
                .target("user", Some(target.id), &target.email)
                .details(format!("{details}; {}", by.by()))
                .record(conn)?;
        }
        if let Some(active) = changes.active.filter(|a| *a != target.is_active) {
            if !active {
                guard_last_admin(conn, &target)?;
            }
            let action = write_active(conn, target.id, active)?;
            by.event(action)
                .target("user", Some(target.id), &target.email)
                .details(by.by())
                .record(conn)?;
        }
        Ok(reread(conn, target.id)?)
    })
    .await
}

/// The token still active and holding `scim:write`, which the policy still lets application
/// tokens hold: read under a share lock on its row, so a revoke waits for this change.
fn check_provisioner(conn: &mut AnyConnection, by: &Provisioner) -> Result<(), Abort<MemberError>> {
    lock_shared(conn, Lock::Policy)?;
    let owner = TokenOwner::Application(by.application_id);
    let holds = active_scopes_locked(conn, owner, by.token_id)?
        .is_some_and(|scopes| scopes.contains(Scope::SCIM_WRITE));
    let allowed = crate::policy::load(conn)?
        .application_scopes
        .contains(Scope::SCIM_WRITE);
    if !(holds && allowed) {
        return refuse(MemberError::NoLongerProvisioning);
    }
    Ok(())
}

fn query_error(e: CreateUserError) -> Abort<MemberError> {
    match e {
        CreateUserError::Query(e) => e.into(),
        CreateUserError::EmailTaken => Abort::Refused(MemberError::EmailTaken),
    }
}
