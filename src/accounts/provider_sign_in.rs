//! Signing in with what the identity provider proved ([`Identity`]): the member it is linked
//! to, else the member with its verified address (linked once), else a new member. One
//! transaction under the members lock, so two first sign-ins at once make one member, with its
//! audit events; every refusal is audited too.

use crate::accounts::identity_provider::Identity;
use crate::accounts::sign_in::SignedIn;
use crate::audit::{Action, Event};
use crate::db::{lock, refuse, Abort, AnyConnection, Db, DbError, Lock};
use crate::domain::{clean_name, Role};
use crate::users::{self, CreateUserError, NewUser, User};

/// Why the provider's word did not sign anyone in.
#[derive(Debug, thiserror::Error)]
pub enum ProviderSignInError {
    #[error("The identity provider did not send a verified email address, so tokendesk cannot tell who you are here. Ask your admin to verify your address at the provider.")]
    UnverifiedEmail,
    #[error("Your account here is deactivated. Ask an admin to reactivate it.")]
    Deactivated,
    #[error("Your email address here is already linked to another account at the identity provider. Ask an admin.")]
    LinkedElsewhere,
    #[error("An admin's account is not linked to the identity provider by email address alone: sign in with your password.")]
    AdminNotLinked,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ProviderSignInError {
    fn reason(&self) -> &'static str {
        match self {
            ProviderSignInError::UnverifiedEmail => "email not verified by the provider",
            ProviderSignInError::Deactivated => "account deactivated",
            ProviderSignInError::LinkedElsewhere => {
                "address linked to another account at the provider"
            }
            ProviderSignInError::AdminNotLinked => "an admin is not linked by address",
            ProviderSignInError::Db(_) => "database error",
        }
    }
}

/// Signs in the member the provider vouched for, starting a server-side session.
pub async fn sign_in(
    db: &Db,
    identity: Identity,
    provider: &str,
    client_ip: String,
) -> Result<SignedIn, ProviderSignInError> {
    // Refusals name the address only when the provider vouched for it: anyone can claim one.
    let email = identity
        .email
        .as_ref()
        .filter(|_| identity.email_verified)
        .map(|e| e.as_str().to_owned());
    let (ip, via) = (client_ip.clone(), format!("via {provider}"));
    let signed_in = db
        .transact(move |conn| {
            lock(conn, Lock::Members)?;
            let user = member_for(conn, &identity, &via, &client_ip)?;
            if !user.is_active {
                return refuse(ProviderSignInError::Deactivated);
            }
            users::confirm_by_provider(conn, user.id)?;
            Event::new(Action::SignInSucceeded, Some(user.id))
                .target("user", Some(user.id), &user.email)
                .client_ip(&client_ip)
                .details(via)
                .record(conn)?;
            let session_secret = crate::sessions::start(conn, user.id)?;
            Ok(SignedIn {
                user,
                session_secret,
            })
        })
        .await;
    if let Err(refusal) = &signed_in {
        if !matches!(refusal, ProviderSignInError::Db(_)) {
            let reason = format!("{provider}: {}", refusal.reason());
            record_failure(db, reason, email, ip).await?;
        }
    }
    signed_in
}

/// The member `identity` is: linked already, or linked now by verified address, or new.
fn member_for(
    conn: &mut AnyConnection,
    identity: &Identity,
    via: &str,
    client_ip: &str,
) -> Result<User, Abort<ProviderSignInError>> {
    let (issuer, subject) = (&identity.issuer, &identity.subject);
    if let Some(user) = users::find_by_provider_subject(conn, issuer, subject)? {
        return Ok(user);
    }
    let Some(email) = identity.email.as_ref().filter(|_| identity.email_verified) else {
        return refuse(ProviderSignInError::UnverifiedEmail);
    };
    if let Some(user) = users::find_by_email(conn, email)? {
        // Linked to another subject of this provider. (A link to a provider no longer
        // configured gives way: the address is verified by the one configured now.)
        if user.provider_subject.is_some() && user.provider_issuer.as_deref() == Some(issuer) {
            return refuse(ProviderSignInError::LinkedElsewhere);
        }
        // Whoever can get an admin's address marked verified at the provider (its helpdesk,
        // its admins) must not become that admin here; nor the break-glass admin, the way
        // back in when the provider itself is not to be trusted.
        if user.is_admin() {
            return refuse(ProviderSignInError::AdminNotLinked);
        }
        users::link_provider(conn, user.id, issuer, subject)?;
        Event::new(Action::MemberLinked, Some(user.id))
            .target("user", Some(user.id), &user.email)
            .client_ip(client_ip)
            .details(format!("linked by verified email, {via}"))
            .record(conn)?;
        return Ok(user);
    }
    let role = if identity.admin {
        Role::Admin
    } else {
        Role::User
    };
    let name = identity
        .name
        .as_deref()
        .and_then(|name| clean_name(name).ok())
        .unwrap_or_else(|| email.as_str().to_owned());
    let new = NewUser {
        email,
        display_name: &name,
        password_hash: None,
        role,
    };
    let user = match users::create(conn, new) {
        Ok(user) => user,
        Err(CreateUserError::EmailTaken) => return refuse(ProviderSignInError::LinkedElsewhere),
        Err(CreateUserError::Query(e)) => return Err(e.into()),
    };
    users::link_provider(conn, user.id, issuer, subject)?;
    Event::new(Action::MemberCreated, Some(user.id))
        .target("user", Some(user.id), &user.email)
        .client_ip(client_ip)
        .details(format!("role={role}; password=none; first sign-in {via}"))
        .record(conn)?;
    Ok(user)
}

/// Records a sign-in through the provider that did not complete, with why.
pub async fn record_failure(
    db: &Db,
    reason: String,
    email: Option<String>,
    client_ip: String,
) -> Result<(), DbError> {
    db.write(move |conn| {
        let event = Event::new(Action::SignInFailed, None)
            .client_ip(&client_ip)
            .details(reason);
        match &email {
            Some(email) => event.target("user", None, email),
            None => event,
        }
        .record(conn)
    })
    .await
}
