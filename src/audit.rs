//! The append-only audit trail: who did what, to what, from where. Never a secret.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::audit_events;
use crate::db::AnyConnection;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SetupCompleted,
    SignInSucceeded,
    SignInFailed,
    SignedOut,
    TokenCreated,
    TokenRegenerated,
    TokenRevoked,
    MemberCreated,
    RoleChanged,
    MemberDeactivated,
    MemberReactivated,
    MemberUpdated,
    MemberLinked,
    PasswordLinkCreated,
    PasswordSet,
    PasswordChanged,
    PasswordChangeRefused,
    DisplayNameChanged,
    PolicyChanged,
    ApplicationCreated,
    ApplicationRenamed,
    ApplicationArchived,
    MaintainerAdded,
    MaintainerRemoved,
    ApplicationTokenCreated,
    ApplicationTokenRegenerated,
    ApplicationTokenRevoked,
    TokenRevokedLeakReport,
    TokenOverlapEnded,
    TokenAddressRefused,
    TokenAutoRevoked,
    TokenUsedFromNewAddress,
    TokenNewAddressDismissed,
    TokenNarrowed,
    MailFailed,
    MailAbandoned,
}

/// How a stored action name reads to a person: "sign_in.succeeded" is "Sign in succeeded".
/// Worked out from the name, so a new action reads well without a table to keep up.
pub fn action_label(stored: &str) -> String {
    let words = stored.replace(['.', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SetupCompleted => "setup.completed",
            Action::SignInSucceeded => "sign_in.succeeded",
            Action::SignInFailed => "sign_in.failed",
            Action::SignedOut => "sign_out",
            Action::TokenCreated => "token.created",
            Action::TokenRegenerated => "token.regenerated",
            Action::TokenRevoked => "token.revoked",
            Action::MemberCreated => "member.created",
            Action::RoleChanged => "member.role_changed",
            Action::MemberDeactivated => "member.deactivated",
            Action::MemberReactivated => "member.reactivated",
            Action::MemberUpdated => "member.updated",
            Action::MemberLinked => "member.linked_to_provider",
            Action::PasswordLinkCreated => "password_link.created",
            Action::PasswordSet => "password.set",
            Action::PasswordChanged => "password.changed",
            Action::PasswordChangeRefused => "password.change_refused",
            Action::DisplayNameChanged => "account.display_name_changed",
            Action::PolicyChanged => "policy.changed",
            Action::ApplicationCreated => "application.created",
            Action::ApplicationRenamed => "application.renamed",
            Action::ApplicationArchived => "application.archived",
            Action::MaintainerAdded => "application.maintainer_added",
            Action::MaintainerRemoved => "application.maintainer_removed",
            Action::ApplicationTokenCreated => "application_token.created",
            Action::ApplicationTokenRegenerated => "application_token.regenerated",
            Action::ApplicationTokenRevoked => "application_token.revoked",
            Action::TokenRevokedLeakReport => "token.revoked_leak_report",
            Action::TokenOverlapEnded => "token.overlap_ended",
            Action::TokenAddressRefused => "token.address_refused",
            Action::TokenAutoRevoked => "token.auto_revoked",
            Action::TokenUsedFromNewAddress => "token.used_from_new_address",
            Action::TokenNewAddressDismissed => "token.new_address_dismissed",
            Action::TokenNarrowed => "token.narrowed",
            Action::MailFailed => "mail.failed",
            Action::MailAbandoned => "mail.abandoned",
        }
    }

    pub const ALL: &'static [Action] = &[
        Action::SetupCompleted,
        Action::SignInSucceeded,
        Action::SignInFailed,
        Action::SignedOut,
        Action::MemberCreated,
        Action::RoleChanged,
        Action::MemberDeactivated,
        Action::MemberReactivated,
        Action::MemberUpdated,
        Action::MemberLinked,
        Action::PasswordLinkCreated,
        Action::PasswordSet,
        Action::PasswordChanged,
        Action::PasswordChangeRefused,
        Action::DisplayNameChanged,
        Action::PolicyChanged,
        Action::TokenCreated,
        Action::TokenRegenerated,
        Action::TokenRevoked,
        Action::ApplicationCreated,
        Action::ApplicationRenamed,
        Action::ApplicationArchived,
        Action::MaintainerAdded,
        Action::MaintainerRemoved,
        Action::ApplicationTokenCreated,
        Action::ApplicationTokenRegenerated,
        Action::ApplicationTokenRevoked,
        Action::TokenRevokedLeakReport,
        Action::TokenOverlapEnded,
        Action::TokenAddressRefused,
        Action::TokenAutoRevoked,
        Action::TokenUsedFromNewAddress,
        Action::TokenNewAddressDismissed,
        Action::TokenNarrowed,
        Action::MailFailed,
        Action::MailAbandoned,
    ];
}

/// Who is acting, for the audit trail.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: i64,
    pub email: String,
    pub client_ip: String,
}

/// One event about to be recorded; build it with the `with_*` methods.
pub struct Event<'a> {
    action: Action,
    actor_id: Option<i64>,
    target: Option<(&'static str, Option<i64>, &'a str)>,
    client_ip: Option<&'a str>,
    details: String,
}

impl<'a> Event<'a> {
    /// An event done by `actor`, from their address.
    pub fn by(action: Action, actor: &'a Actor) -> Self {
        Self::new(action, Some(actor.user_id)).client_ip(&actor.client_ip)
    }

    pub fn new(action: Action, actor_id: Option<i64>) -> Self {
        Self {
            action,
            actor_id,
            target: None,
            client_ip: None,
            details: String::new(),
        }
    }

    pub fn target(mut self, kind: &'static str, id: Option<i64>, label: &'a str) -> Self {
        self.target = Some((kind, id, label));
        self
    }

    pub fn client_ip(mut self, ip: &'a str) -> Self {
        self.client_ip = Some(ip);
        self
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    pub fn record(self, conn: &mut AnyConnection) -> QueryResult<()> {
        let (target_type, target_id, target_label) = match self.target {
            Some((kind, id, label)) => (Some(kind), id, Some(label)),
            None => (None, None, None),
        };
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::created_at.eq(Utc::now().naive_utc()),
                audit_events::actor_id.eq(self.actor_id),
                audit_events::action.eq(self.action.as_str()),
                audit_events::target_type.eq(target_type),
                audit_events::target_id.eq(target_id),
                audit_events::target_label.eq(target_label),
                audit_events::client_ip.eq(self.client_ip),
                audit_events::details.eq(self.details),
            ))
            .execute(conn)
            .map(drop)
    }
}

#[derive(Debug, Queryable)]
pub struct StoredEvent {
    pub id: i64,
    pub created_at: NaiveDateTime,
    pub actor_id: Option<i64>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub target_label: Option<String>,
    pub client_ip: Option<String>,
    pub details: String,
}

/// The newest events first; the admin audit page pages through these.
pub fn recent(conn: &mut AnyConnection, limit: i64) -> QueryResult<Vec<StoredEvent>> {
    audit_events::table
        .order(audit_events::id.desc())
        .limit(limit)
        .load(conn)
}

/// What the audit page can be narrowed to.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Part of the actor's email.
    pub actor: String,
    pub action: Option<Action>,
    pub from: Option<NaiveDateTime>,
    /// Exclusive.
    pub until: Option<NaiveDateTime>,
}

pub struct AuditRow {
    pub event: StoredEvent,
    pub actor_email: Option<String>,
}

type WithActor = diesel::dsl::LeftJoin<audit_events::table, crate::db::schema::users::table>;

fn filtered(f: &AuditFilter) -> diesel::dsl::IntoBoxed<'_, WithActor, crate::db::MultiBackend> {
    use crate::db::schema::users;
    let mut query = audit_events::table
        .left_join(users::table)
        .into_boxed::<crate::db::MultiBackend>();
    if !f.actor.trim().is_empty() {
        let pattern = format!(
            "%{}%",
            crate::db::escape_like(&f.actor.trim().to_lowercase())
        );
        query = query.filter(users::email.like(pattern).escape('\\'));
    }
    if let Some(action) = f.action {
        query = query.filter(audit_events::action.eq(action.as_str()));
    }
    if let Some(from) = f.from {
        query = query.filter(audit_events::created_at.ge(from));
    }
    if let Some(until) = f.until {
        query = query.filter(audit_events::created_at.lt(until));
    }
    query
}

pub fn count(conn: &mut AnyConnection, f: &AuditFilter) -> QueryResult<i64> {
    filtered(f).count().get_result(conn)
}

/// The events an export has yet to read: every matching one, newest first, a page at a time,
/// each page one query from the last id read (keyset paging: as fast at the millionth event as
/// at the first, and no connection held between pages). Events are never changed, and ones
/// recorded during the export are newer than its first page, so it shows each event once.
pub struct Export {
    filter: AuditFilter,
    /// The last event read.
    before: Option<i64>,
    done: bool,
}

impl Export {
    pub fn new(filter: AuditFilter) -> Self {
        Export {
            filter,
            before: None,
            done: false,
        }
    }

    /// The next page, at most `limit` events, and the export to go on with; `None` when every
    /// matching event was read.
    pub fn next_page(
        mut self,
        conn: &mut AnyConnection,
        limit: i64,
    ) -> QueryResult<Option<(Vec<AuditRow>, Self)>> {
        if self.done {
            return Ok(None);
        }
        let mut query = filtered(&self.filter);
        if let Some(before) = self.before {
            query = query.filter(audit_events::id.lt(before));
        }
        let rows = load(conn, query.order(audit_events::id.desc()).limit(limit))?;
        self.done = (rows.len() as i64) < limit;
        self.before = rows.last().map(|row| row.event.id).or(self.before);
        Ok(Some((rows, self)))
    }
}

/// Newest first.
pub fn list(
    conn: &mut AnyConnection,
    f: &AuditFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    load(
        conn,
        filtered(f)
            .order(audit_events::id.desc())
            .offset(offset)
            .limit(limit),
    )
}

/// The events `query` selects, with their actors' emails.
fn load(
    conn: &mut AnyConnection,
    query: diesel::dsl::IntoBoxed<'_, WithActor, crate::db::MultiBackend>,
) -> QueryResult<Vec<AuditRow>> {
    use crate::db::schema::users;
    let rows: Vec<(StoredEvent, Option<String>)> = query
        .select((
            (
                audit_events::id,
                audit_events::created_at,
                audit_events::actor_id,
                audit_events::action,
                audit_events::target_type,
                audit_events::target_id,
                audit_events::target_label,
                audit_events::client_ip,
                audit_events::details,
            ),
            users::email.nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(event, actor_email)| AuditRow { event, actor_email })
        .collect())
}
