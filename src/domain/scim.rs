//! What a provisioning client (SCIM 2.0, RFC 7643/7644) asks of a member, parsed once: the user
//! resource it sends, the one filter providers use, and PATCH operations. Only what tokendesk
//! keeps of a member is read (userName, a name, externalId, active); every other attribute an
//! identity provider sends (titles, phone numbers, enterprise extensions) is accepted and left
//! alone, as providers expect of a service that keeps fewer attributes than they have.

use serde_json::Value;

use crate::domain::{clean_name, Email};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// An externalId is kept to this many characters.
const EXTERNAL_ID_MAX: usize = 255;

/// Why a request cannot be read: the RFC 7644 `scimType` and a sentence for the client's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimRefusal {
    pub scim_type: &'static str,
    pub detail: String,
}

impl ScimRefusal {
    fn new(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            scim_type,
            detail: detail.into(),
        }
    }
}

/// Which members a list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    All,
    UserName(Email),
    ExternalId(String),
    /// A userName that is no email address: no member can have it.
    Nobody,
}

/// Parses the filters providers send to find a member before creating one:
/// `userName eq "…"` and `externalId eq "…"` (attribute and operator in any case).
pub fn parse_filter(raw: Option<&str>) -> Result<UserFilter, ScimRefusal> {
    let Some(raw) = raw.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(UserFilter::All);
    };
    let unsupported = || {
        ScimRefusal::new(
            "invalidFilter",
            "Only the filters userName eq \"…\" and externalId eq \"…\" are supported.",
        )
    };
    let mut words = raw.splitn(3, char::is_whitespace);
    let (Some(attribute), Some(operator), Some(value)) = (words.next(), words.next(), words.next())
    else {
        return Err(unsupported());
    };
    if !operator.eq_ignore_ascii_case("eq") {
        return Err(unsupported());
    }
    let value: String = serde_json::from_str(value.trim()).map_err(|_| unsupported())?;
    if attribute.eq_ignore_ascii_case("userName") {
        Ok(Email::parse(&value).map_or(UserFilter::Nobody, UserFilter::UserName))
    } else if attribute.eq_ignore_ascii_case("externalId") {
        // Read as a stored one is: no control characters (PostgreSQL refuses NUL), bounded.
        match external_id(Some(&Value::String(value))) {
            Ok(Some(id)) => Ok(UserFilter::ExternalId(id)),
            Ok(None) => Ok(UserFilter::Nobody),
            Err(refusal) => Err(ScimRefusal::new("invalidFilter", refusal.detail)),
        }
    } else {
        Err(unsupported())
    }
}

/// A member as a provider sends one (POST and PUT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserResource {
    pub email: Email,
    pub display_name: String,
    pub external_id: Option<String>,
    /// Absent: left as it is (a new member is active).
    pub active: Option<bool>,
}

/// What a PATCH changes; `None` leaves the attribute as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub email: Option<Email>,
    /// `Some(None)`: removed, so the member is named by their address.
    pub display_name: Option<Option<String>>,
    /// `Some(None)`: removed.
    pub external_id: Option<Option<String>>,
    pub active: Option<bool>,
}

impl UserChanges {
    /// A PUT replaces what tokendesk keeps of the member.
    pub fn replacing(resource: UserResource) -> Self {
        Self {
            email: Some(resource.email),
            display_name: Some(Some(resource.display_name)),
            external_id: Some(resource.external_id),
            active: resource.active,
        }
    }
}

/// Reads a user resource. userName is the member's email address (providers send the user
/// principal name or the primary email there); without a display name, the name parts or the
/// address itself name the member.
pub fn parse_user(body: &Value) -> Result<UserResource, ScimRefusal> {
    let Some(object) = body.as_object() else {
        return Err(ScimRefusal::new("invalidSyntax", "Send a JSON object."));
    };
    let field = |name: &str| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    };
    let user_name = field("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimRefusal::new("invalidValue", "userName is required."))?;
    let email = parse_user_name(user_name)?;
    let display_name = match display_name_of(field("displayName"), field("name"))? {
        Some(name) => name,
        None => clean_name(email.as_str()).unwrap_or_else(|_| email.as_str().to_owned()),
    };
    Ok(UserResource {
        email,
        display_name,
        external_id: external_id(field("externalId"))?,
        active: field("active").map(parse_active).transpose()?,
    })
}

fn parse_user_name(raw: &str) -> Result<Email, ScimRefusal> {
    Email::parse(raw).map_err(|why| {
        ScimRefusal::new(
            "invalidValue",
            format!("userName must be the member's email address: {why}"),
        )
    })
}

/// A display name from `displayName`, else `name.formatted`, else the given and family names.
fn display_name_of(
    display_name: Option<&Value>,
    name: Option<&Value>,
) -> Result<Option<String>, ScimRefusal> {
    let part = |key: &str| {
        name.and_then(Value::as_object)
            .and_then(|n| n.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let joined = [part("givenName"), part("familyName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let chosen = display_name
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or(part("formatted"))
        .or((!joined.is_empty()).then_some(joined.as_str()));
    chosen.map(clean_display_name).transpose()
}

fn clean_display_name(raw: &str) -> Result<String, ScimRefusal> {
    clean_name(raw).map_err(|why| ScimRefusal::new("invalidValue", format!("displayName: {why}")))
}

fn external_id(value: Option<&Value>) -> Result<Option<String>, ScimRefusal> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if id.chars().count() <= EXTERNAL_ID_MAX => {
            let id = id.trim();
            if id.chars().any(char::is_control) {
                return Err(ScimRefusal::new(
                    "invalidValue",
                    "externalId holds control characters.",
                ));
            }
            Ok((!id.is_empty()).then(|| id.to_owned()))
        }
        Some(Value::String(_)) => Err(ScimRefusal::new(
            "invalidValue",
            format!("externalId is longer than {EXTERNAL_ID_MAX} characters."),
        )),
        Some(_) => Err(ScimRefusal::new(
            "invalidValue",
            "externalId must be a string.",
        )),
    }
}

/// `true`/`false`, or the strings "True"/"False" that Entra ID sends in PATCH operations.
fn parse_active(value: &Value) -> Result<bool, ScimRefusal> {
    match value {
        Value::Bool(active) => Ok(*active),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimRefusal::new(
            "invalidValue",
            "active must be true or false.",
        )),
    }
}

/// Reads a PatchOp body into the changes it makes. Operations on attributes tokendesk does not
/// keep change nothing; `emails` follows userName, which is the member's address.
pub fn parse_patch(body: &Value) -> Result<UserChanges, ScimRefusal> {
    let operations = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("Operations")))
        .and_then(|(_, ops)| ops.as_array())
        .ok_or_else(|| ScimRefusal::new("invalidSyntax", "Operations is required."))?;
    let mut patch = Patch::default();
    for operation in operations {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let path = operation.get("path").and_then(Value::as_str).map(attribute);
        let value = operation.get("value");
        match (op.as_str(), path) {
            ("add" | "replace", Some(path)) => {
                let value = value.ok_or_else(|| {
                    ScimRefusal::new("invalidValue", format!("{op} {path} needs a value."))
                })?;
                patch.apply(path, value)?;
            }
            ("add" | "replace", None) => {
                let Some(object) = value.and_then(Value::as_object) else {
                    return Err(ScimRefusal::new(
                        "invalidValue",
                        format!("{op} without a path needs an object of attributes."),
                    ));
                };
                for (path, value) in object {
                    patch.apply(attribute(path), value)?;
                }
            }
            ("remove", Some(path)) => patch.remove(path)?,
            ("remove", None) => {
                return Err(ScimRefusal::new("noTarget", "remove needs a path."));
            }
            _ => {
                return Err(ScimRefusal::new(
                    "invalidSyntax",
                    "op must be add, replace or remove.",
                ))
            }
        }
    }
    patch.into_changes()
}

/// An attribute path without the core schema's URN before it (in any case).
fn attribute(path: &str) -> &str {
    match path.get(..USER_SCHEMA.len()) {
        Some(urn) if urn.eq_ignore_ascii_case(USER_SCHEMA) => {
            path[USER_SCHEMA.len()..].trim_start_matches(':')
        }
        _ => path,
    }
}

/// What the operations of one PATCH said, before they are read as changes: the name parts
/// (Entra ID sends `name.givenName` and `name.familyName` as operations of their own) make a
/// display name only when no whole name came and both parts did, since tokendesk keeps no
/// parts to complete a lone one with.
#[derive(Default)]
struct Patch {
    changes: UserChanges,
    given: Option<String>,
    family: Option<String>,
}

impl Patch {
    fn apply(&mut self, path: &str, value: &Value) -> Result<(), ScimRefusal> {
        let text = || {
            value.as_str().ok_or_else(|| {
                ScimRefusal::new("invalidValue", format!("{path} must be a string."))
            })
        };
        let is = |name: &str| path.eq_ignore_ascii_case(name);
        let changes = &mut self.changes;
        if is("active") {
            changes.active = Some(parse_active(value)?);
        } else if is("userName") {
            changes.email = Some(parse_user_name(text()?)?);
        } else if is("displayName") || is("name.formatted") {
            changes.display_name = Some(Some(clean_display_name(text()?)?));
        } else if is("externalId") {
            changes.external_id = Some(external_id(Some(value))?);
        } else if is("name.givenName") {
            self.given = Some(text()?.to_owned());
        } else if is("name.familyName") {
            self.family = Some(text()?.to_owned());
        } else if is("name") {
            let Some(name) = value.as_object() else {
                return Err(ScimRefusal::new("invalidValue", "name must be an object."));
            };
            for (part, value) in name {
                self.apply(&format!("name.{part}"), value)?;
            }
        }
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Result<(), ScimRefusal> {
        let is = |name: &str| path.eq_ignore_ascii_case(name);
        if is("externalId") {
            self.changes.external_id = Some(None);
        } else if is("displayName") || is("name.formatted") || is("name") {
            // The member keeps a name: their address, as when they were made without one.
            self.changes.display_name = Some(None);
        } else if is("userName") || is("active") {
            return Err(ScimRefusal::new(
                "mutability",
                format!("{path} cannot be removed."),
            ));
        }
        Ok(())
    }

    fn into_changes(mut self) -> Result<UserChanges, ScimRefusal> {
        if self.changes.display_name.is_none() {
            if let (Some(given), Some(family)) = (&self.given, &self.family) {
                let joined = format!("{} {}", given.trim(), family.trim());
                self.changes.display_name = Some(Some(clean_display_name(&joined)?));
            }
        }
        Ok(self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_providers_send_are_read_and_others_refused() {
        let kim = Email::parse("kim@example.com").unwrap();
        assert_eq!(
            parse_filter(Some(r#"userName eq "Kim@Example.com""#)),
            Ok(UserFilter::UserName(kim))
        );
        assert_eq!(
            parse_filter(Some(r#"externalId EQ "00u1 \"x\"""#)),
            Ok(UserFilter::ExternalId("00u1 \"x\"".into()))
        );
        assert_eq!(
            parse_filter(Some(r#"userName eq "kim""#)),
            Ok(UserFilter::Nobody)
        );
        assert_eq!(parse_filter(None), Ok(UserFilter::All));
        for refused in [
            r#"userName co "kim""#,
            r#"emails.value eq "kim@example.com""#,
            "userName eq kim",
            r#"userName eq "a" or userName eq "b""#,
            // An escaped NUL (PostgreSQL refuses it), and an id longer than any stored.
            r#"externalId eq "a\u0000b""#,
            format!(r#"externalId eq "{}""#, "x".repeat(256)).as_str(),
        ] {
            assert_eq!(
                parse_filter(Some(refused)).unwrap_err().scim_type,
                "invalidFilter",
                "{refused}"
            );
        }
    }

    #[test]
    fn a_user_is_named_by_display_name_then_name_parts_then_address() {
        let okta = json!({"schemas": [USER_SCHEMA], "userName": "Ann@Example.com",
            "name": {"givenName": "Ann", "familyName": "Lee"}, "active": true,
            "emails": [{"primary": true, "value": "ann@example.com", "type": "work"}]});
        let ann = parse_user(&okta).unwrap();
        assert_eq!(ann.email.as_str(), "ann@example.com");
        assert_eq!(ann.display_name, "Ann Lee");
        assert_eq!(ann.active, Some(true));
        let entra = json!({"userName": "bo@example.com", "displayName": "  Bo  Ek ",
            "externalId": "bo", "active": "False"});
        let bo = parse_user(&entra).unwrap();
        assert_eq!(
            (bo.display_name.as_str(), bo.active),
            ("Bo Ek", Some(false))
        );
        assert_eq!(bo.external_id.as_deref(), Some("bo"));
        let bare = parse_user(&json!({"userName": "cy@example.com"})).unwrap();
        assert_eq!(bare.display_name, "cy@example.com");
        let no_address = parse_user(&json!({"userName": "cy"})).unwrap_err();
        assert_eq!(no_address.scim_type, "invalidValue");
        let long = parse_user(&json!({"userName": "a@b.co", "externalId": "x".repeat(256)}));
        assert_eq!(long.unwrap_err().scim_type, "invalidValue");
    }

    #[test]
    fn patches_of_okta_and_entra_shapes_read_alike() {
        let okta = json!({"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "value": {"active": false}}]});
        assert_eq!(parse_patch(&okta).unwrap().active, Some(false));
        let entra = json!({"schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "x@example.com"},
            {"op": "Replace", "path": "displayName", "value": "Dee Fox"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "7"},
            {"op": "Remove", "path": "externalId"}]});
        let changes = parse_patch(&entra).unwrap();
        assert_eq!(changes.active, Some(false));
        assert_eq!(changes.display_name, Some(Some("Dee Fox".into())));
        assert_eq!(changes.external_id, Some(None));
        assert_eq!(changes.email, None);
        let bad = json!({"Operations": [{"op": "replace", "path": "active", "value": "maybe"}]});
        assert_eq!(parse_patch(&bad).unwrap_err().scim_type, "invalidValue");
        let removing = json!({"Operations": [{"op": "remove", "path": "userName"}]});
        assert_eq!(parse_patch(&removing).unwrap_err().scim_type, "mutability");
        assert_eq!(
            parse_patch(&json!({})).unwrap_err().scim_type,
            "invalidSyntax"
        );
    }
}
