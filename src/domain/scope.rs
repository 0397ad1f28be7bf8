//! The scope catalogue: one `resource:action` per line, with the description shown beside its
//! checkbox. Adding a scope is adding a line here.

use std::fmt;
use std::str::FromStr;

use crate::domain::Role;

pub struct ScopeInfo {
    pub name: &'static str,
    pub description: &'static str,
}

const fn scope(name: &'static str, description: &'static str) -> ScopeInfo {
    ScopeInfo { name, description }
}

pub const CATALOGUE: &[ScopeInfo] = &[
    scope("account:read", "Read-only access to the account details."),
    scope("account:write", "Update and delete account."),
    scope(
        "activation:read",
        "Read-only access to all the license activations.",
    ),
    scope("analytics:read", "Read-only access to analytics."),
    scope(
        "applicationToken:read",
        "List the applications you maintain and their tokens.",
    ),
    scope(
        "applicationToken:write",
        "Create and revoke tokens of the applications you maintain.",
    ),
    scope("eventLog:read", "Read-only access to event logs."),
    scope("invoice:read", "Read-only access to all the invoices."),
    scope("license:read", "Read-only access to all the licenses."),
    scope("license:write", "Create, update and delete licenses."),
    scope(
        "licenseTemplate:read",
        "Read-only access to all the license templates.",
    ),
    scope(
        "licenseTemplate:write",
        "Create, update and delete license templates.",
    ),
    scope(
        "paymentMethod:read",
        "Read-only access to all the credit cards.",
    ),
    scope(
        "paymentMethod:write",
        "Create, update and delete credit cards.",
    ),
    scope("personalAccessToken:read", "List personal access tokens."),
    scope(
        "personalAccessToken:write",
        "Create, revoke and delete personal access tokens.",
    ),
    scope(
        "product:read",
        "Read-only access to all the products and related policies.",
    ),
    scope("product:write", "Create, update and delete products."),
    scope("release:read", "Read-only access to all the releases."),
    scope(
        "release:write",
        "Create, update, publish and delete releases.",
    ),
    scope("role:read", "Read-only access to all the roles."),
    scope("role:write", "Create, update and delete roles."),
    scope(
        "scim:write",
        "Provision and deprovision members from an identity provider (SCIM). Application tokens only, made by an admin.",
    ),
    scope("tag:read", "Read-only access to all the tags."),
    scope("tag:write", "Create, update and delete tags."),
    scope(
        "trialActivation:read",
        "Read-only access to all the trial activations.",
    ),
    scope(
        "trialActivation:write",
        "Extend and delete trial activations.",
    ),
    scope(
        "trialPolicy:read",
        "Read-only access to all the trial policies.",
    ),
    scope(
        "trialPolicy:write",
        "Create, update and delete trial policies.",
    ),
    scope("user:read", "Read-only access to all the users."),
    scope("user:write", "Create, update and delete users."),
    scope("webhook:read", "Read-only access to all the webhooks."),
    scope("webhook:write", "Create, update and delete webhooks."),
];

// A ScopeSet is a bitmask over the catalogue.
const _: () = assert!(CATALOGUE.len() <= 64);

/// One scope of the catalogue; it cannot name anything that is not there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(u8);

/// Whether two names are the same, in a `const` context.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Scope {
    /// The scope of the catalogue named `name`. Used for constants, so a name that is not in
    /// the catalogue fails the build instead of a request.
    const fn named(name: &str) -> Scope {
        let mut i = 0;
        while i < CATALOGUE.len() {
            if same(CATALOGUE[i].name, name) {
                return Scope(i as u8);
            }
            i += 1;
        }
        panic!("no such scope in the catalogue")
    }

    /// The scopes code names: the API's own and the one a user may hold beyond reading.
    pub const PERSONAL_ACCESS_TOKEN_READ: Scope = Scope::named("personalAccessToken:read");
    pub const PERSONAL_ACCESS_TOKEN_WRITE: Scope = Scope::named("personalAccessToken:write");
    pub const APPLICATION_TOKEN_READ: Scope = Scope::named("applicationToken:read");
    pub const APPLICATION_TOKEN_WRITE: Scope = Scope::named("applicationToken:write");
    /// Creates, changes and deactivates members: tokendesk's own administration, for an
    /// identity provider's provisioning client.
    pub const SCIM_WRITE: Scope = Scope::named("scim:write");

    pub fn all() -> impl Iterator<Item = Scope> {
        (0..CATALOGUE.len() as u8).map(Scope)
    }

    fn info(self) -> &'static ScopeInfo {
        &CATALOGUE[self.0 as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn description(self) -> &'static str {
        self.info().description
    }

    pub fn resource(self) -> &'static str {
        self.name().split_once(':').map_or(self.name(), |(r, _)| r)
    }

    pub fn is_read(self) -> bool {
        self.name().ends_with(":read")
    }

    /// Scopes for a service, never a person: they outlive whoever holds an admin role now.
    pub fn is_application_only(self) -> bool {
        self == Scope::SCIM_WRITE
    }

    /// Role inheritance: an admin may hold every scope; a user every read scope, and may
    /// manage their own tokens and those of the applications they maintain (which of those
    /// they maintain is checked when they act).
    pub fn allowed_for(self, role: Role) -> bool {
        if self.is_application_only() {
            return false;
        }
        match role {
            Role::Admin => true,
            Role::User => {
                self.is_read()
                    || self == Scope::PERSONAL_ACCESS_TOKEN_WRITE
                    || self == Scope::APPLICATION_TOKEN_WRITE
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CATALOGUE
            .iter()
            .position(|info| info.name == s)
            .map(|i| Scope(i as u8))
            .ok_or_else(|| format!("unknown scope {s:?}"))
    }
}

/// A set of scopes, as a bitmask: copying, intersecting and checking it never allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(u64);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);
    /// Every scope of the catalogue.
    pub const ALL: ScopeSet = ScopeSet(if CATALOGUE.len() == 64 {
        u64::MAX
    } else {
        (1 << CATALOGUE.len()) - 1
    });

    pub fn allowed_for(role: Role) -> ScopeSet {
        Scope::all().filter(|s| s.allowed_for(role)).collect()
    }

    /// The scopes only application tokens hold.
    pub fn application_only() -> ScopeSet {
        Scope::all().filter(|s| s.is_application_only()).collect()
    }

    /// Parses names, refusing unknown ones.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, String> {
        names.into_iter().map(str::parse::<Scope>).collect()
    }

    /// Reads the stored, space-separated form. A name no longer in the catalogue grants
    /// nothing, so it is dropped rather than failing the whole token.
    pub fn from_stored(stored: &str) -> ScopeSet {
        stored
            .split_whitespace()
            .filter_map(|name| name.parse::<Scope>().ok())
            .collect()
    }

    pub fn to_stored(self) -> String {
        self.iter().map(Scope::name).collect::<Vec<_>>().join(" ")
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & (1 << scope.0) != 0
    }

    pub fn intersection(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    pub fn difference(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::all().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().fold(0, |bits, s| bits | (1 << s.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_unique_and_well_formed() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), 33);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        for name in names {
            let (resource, action) = name.split_once(':').unwrap();
            assert!(
                !resource.is_empty() && (action == "read" || action == "write"),
                "{name}"
            );
        }
        assert!("licenseTemplate:write".parse::<Scope>().is_ok());
        assert!("licenseTemaplate:write".parse::<Scope>().is_err());
    }

    #[test]
    fn users_get_reads_and_their_own_tokens_admins_everything_a_person_may_hold() {
        let user = ScopeSet::allowed_for(Role::User);
        assert!(user.contains("license:read".parse().unwrap()));
        assert!(user.contains("personalAccessToken:write".parse().unwrap()));
        assert!(!user.contains("license:write".parse().unwrap()));
        let admin = ScopeSet::allowed_for(Role::Admin);
        assert_eq!(admin.len(), CATALOGUE.len() - 1);
        // Provisioning is a service's: no person holds it, whatever their role.
        assert!(!admin.contains(Scope::SCIM_WRITE) && !user.contains(Scope::SCIM_WRITE));
        assert_eq!(
            ScopeSet::application_only(),
            ScopeSet::parse(["scim:write"]).unwrap()
        );
    }

    #[test]
    fn stored_form_round_trips_and_drops_retired_names() {
        let set = ScopeSet::parse(["tag:write", "account:read"]).unwrap();
        assert_eq!(set.to_stored(), "account:read tag:write");
        assert_eq!(ScopeSet::from_stored(&set.to_stored()), set);
        assert_eq!(
            ScopeSet::from_stored("account:read retired:read"),
            ScopeSet::parse(["account:read"]).unwrap()
        );
        assert!(ScopeSet::parse(["account:read", "nope:read"]).is_err());
    }

    #[test]
    fn intersection_limits_to_the_role() {
        let token = ScopeSet::parse(["license:read", "license:write"]).unwrap();
        let effective = token.intersection(ScopeSet::allowed_for(Role::User));
        assert_eq!(effective.to_stored(), "license:read");
        assert_eq!(token.difference(effective).to_stored(), "license:write");
    }
}
