//! Upgrades keep data: a database made by an older tokendesk, with people, tokens and sessions in
//! it, is migrated by the new one at start and everything in it still works.

use diesel::migration::MigrationSource;
use diesel::RunQueryDsl;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use reqwest::StatusCode;
use tokendesk::db::{AnyConnection, DatabaseUrl};
use tokendesk::tokens::TokenSecret;

use crate::backend_tests;
use crate::helpers::{location, Backend, EmptyDatabase, Presented, TestApp};

backend_tests!(
    a_database_from_before_the_security_fixes_keeps_its_people_and_tokens,
    application_names_stored_before_width_counted_are_rekeyed_once,
    tokens_from_before_allowlists_work_from_anywhere_and_rotate_with_an_overlap,
    a_replaced_secret_from_before_its_own_bounds_keeps_the_tokens,
    tokens_from_before_mail_keep_working_and_get_their_expiry_reminder,
    a_token_used_before_usage_history_keeps_its_last_address_as_known,
    last_used_from_before_its_own_table_is_kept_sorted_and_moves_on,
    members_from_before_provisioning_are_found_and_changed_by_scim,
    an_external_id_two_members_held_stays_with_the_active_one,
    members_from_before_sign_in_through_a_provider_keep_their_passwords,
);

/// The last migration before an externalId named one member.
const BEFORE_UNIQUE_EXTERNAL_IDS: &str = "2026-11-27-000016";

/// The last migration before members kept a provisioning client's externalId.
const BEFORE_EXTERNAL_IDS: &str = "2026-11-27-000014";

/// The last migration before Last used moved to a table of its own.
const BEFORE_LAST_USES: &str = "2026-11-26-000013";

/// The last migration before mail notifications.
const BEFORE_MAIL: &str = "2026-11-26-000012";

/// The last migration before usage history, new-address flags and scopes exercised.
const BEFORE_USAGE: &str = "2026-11-26-000011";

/// The last migration before replaced secrets kept their own allowlist and expiry.
const BEFORE_PREVIOUS_BOUNDS: &str = "2026-11-26-000010";

/// The last migration before rotation overlaps and address allowlists.
const BEFORE_ALLOWLISTS: &str = "2026-11-26-000009";

/// The last migration of the release before sign-in reservations and one-time showings.
const BEFORE: &str = "2026-11-25-000004";

/// Applies the backend's migrations up to and including `last`, as that release would have.
fn migrate_until(conn: &mut AnyConnection, backend: Backend, last: &str) {
    let folder = match backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    };
    let source = FileBasedMigrations::from_path(folder).unwrap();
    macro_rules! apply {
        ($conn:expr, $backend:ty) => {{
            let version = |v: String| v.replace('-', "");
            let mut migrations = MigrationSource::<$backend>::migrations(&source).unwrap();
            migrations.sort_by_key(|m| version(m.name().version().to_string()));
            diesel::migration::MigrationConnection::setup($conn).unwrap();
            for migration in migrations {
                if version(migration.name().version().to_string()) > version(last.to_owned()) {
                    break;
                }
                $conn.run_migration(&migration).unwrap();
            }
        }};
    }
    match conn {
        AnyConnection::Sqlite(c) => apply!(c, diesel::sqlite::Sqlite),
        AnyConnection::Postgresql(c) => apply!(c, diesel::pg::Pg),
    }
}

/// A database made by the release whose last migration was `last`, with `statements` run in
/// that release's SQL.
fn database_until(backend: Backend, last: &str, statements: &[String]) -> EmptyDatabase {
    let database = EmptyDatabase::new(backend);
    let mut conn = DatabaseUrl::parse(&database.url)
        .unwrap()
        .connect()
        .unwrap();
    migrate_until(&mut conn, backend, last);
    for sql in statements {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
    database
}

/// [`database_until`] with Kim (kim@example.com, a user without a password, id 1) first.
fn database_with_kim(backend: Backend, last: &str, statements: &[String]) -> EmptyDatabase {
    let kim = "INSERT INTO users (email, display_name, password_hash, role, is_active, \
               created_at, updated_at) VALUES ('kim@example.com', 'Kim', NULL, 'user', TRUE, \
               '2026-01-01 00:00:00', '2026-01-01 00:00:00')";
    let mut all = vec![kim.to_owned()];
    all.extend_from_slice(statements);
    database_until(backend, last, &all)
}

/// A database as the release before the fixes left it: its migrations only, then (in its own
/// SQL, as today's code writes today's schema) an admin whose domain it kept in Unicode, a
/// token, and an audit event. Returns the database and the token.
fn a_database_from_the_older_release(backend: Backend) -> (EmptyDatabase, TokenSecret) {
    let hash = tokendesk::domain::hash_password("kims-old-password").unwrap();
    let token = TokenSecret::generate();
    let statements = [
        format!(
            "INSERT INTO users (email, display_name, password_hash, role, is_active, created_at, \
             updated_at) VALUES ('kim@bücher.example', 'Kim', '{hash}', 'admin', TRUE, \
             '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        ),
        format!(
            "INSERT INTO personal_access_tokens (user_id, name, digest, hint, scopes, created_at) \
             VALUES (1, 'ci', '{}', '{}', 'license:read tag:read', '2026-01-01 00:00:00')",
            token.digest().0,
            token.hint()
        ),
        "INSERT INTO audit_events (created_at, action, details) \
         VALUES ('2026-01-01 00:00:00', 'setup.completed', '')"
            .to_owned(),
    ];
    (database_until(backend, BEFORE, &statements), token)
}

async fn a_database_from_before_the_security_fixes_keeps_its_people_and_tokens(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let (database, token) = a_database_from_the_older_release(backend);

    let app = TestApp::spawn_on(database, |_| {}).await;
    let me = app.api().get("/me", token.expose(), Presented::Bearer);
    let me = me.send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the old token still works");
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["kind"], "personal");
    assert_eq!(me["token"]["id"], 1, "it keeps its id");
    assert_eq!(
        me["token"]["scopes"],
        serde_json::json!(["license:read", "tag:read"]),
        "and its scopes"
    );
    let browser = app.browser();
    let signed_in = browser
        .sign_in("kim@bücher.example", "kims-old-password")
        .await;
    assert_eq!(
        location(&signed_in),
        "/developer/access-tokens",
        "Kim still signs in"
    );
    assert!(browser
        .page("/developer/access-tokens")
        .await
        .contains(">ci<"));
    assert_eq!(
        app.audit_events("setup.completed").await.len(),
        1,
        "the trail is kept"
    );
    // The new tables work on the upgraded database: a one-time reveal, the sign-in record.
    browser
        .create_token("after the upgrade", "30", &["tag:read"])
        .await;
    an_application_gets_a_working_token(&app).await;
}

/// Kim (an admin) creates an application through the API and a token for it, which works.
async fn an_application_gets_a_working_token(app: &TestApp) {
    let scopes = ["applicationToken:read", "applicationToken:write"];
    let (id, kims) = app.token_for(1, "apps", &scopes).await;
    assert!(id > 1, "a new token, a new id: {id}");
    let api = app.api();
    let url = format!("{}/api/v1/applications", app.address);
    let body = serde_json::json!({"name": "Billing"});
    let created = api.client.post(&url).bearer_auth(&kims).json(&body);
    let created = created.send().await.unwrap();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "an application after the upgrade"
    );
    let tokens_url = format!("{}{}", app.address, location(&created));
    let body = serde_json::json!({"name": "ci", "expires_in": "30", "scopes": ["tag:read"]});
    let made = api.client.post(tokens_url).bearer_auth(&kims).json(&body);
    let made: serde_json::Value = made.send().await.unwrap().json().await.unwrap();
    let secret = made["secret"].as_str().expect("a token for it");
    assert_eq!(api.me(secret).await.status(), StatusCode::OK);
}

/// Applications named before names were compared across width (their keys lower-cased only)
/// get today's keys from what every start runs, so a look-alike name is refused; two that turn
/// out to be one name are left for an admin to rename.
async fn application_names_stored_before_width_counted_are_rekeyed_once(app: TestApp) {
    let stored_by_the_release_before = [
        "INSERT INTO applications (name, name_key, created_at) \
         VALUES ('Ｂｉｌｌｉｎｇ', 'ｂｉｌｌｉｎｇ', '2026-11-26 00:00:00')",
        "INSERT INTO applications (name, name_key, created_at) \
         VALUES ('Ｐａｙｒｏｌｌ', 'ｐａｙｒｏｌｌ', '2026-11-26 00:00:00')",
        "INSERT INTO applications (name, name_key, created_at) \
         VALUES ('payroll', 'payroll', '2026-11-26 00:00:00')",
        "DELETE FROM settings WHERE key = 'upgrade.application_name_keys_nfkc'",
    ];
    app.db
        .run(move |conn| {
            for sql in stored_by_the_release_before {
                diesel::sql_query(sql).execute(conn)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // What every start runs after the migrations.
    app.db
        .run(tokendesk::accounts::upgrade_stored_data)
        .await
        .unwrap();

    let taken = |name: &'static str| {
        app.db
            .run(move |conn| tokendesk::applications::name_taken(conn, name, None))
    };
    assert!(
        taken("billing").await.unwrap(),
        "the fullwidth name is Billing's"
    );
    assert!(taken("payroll").await.unwrap());
    let keys: Vec<String> = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use tokendesk::db::schema::applications as apps;
            apps::table
                .order(apps::id)
                .select(apps::name_key)
                .load(conn)
        })
        .await
        .unwrap();
    assert_eq!(
        keys,
        ["billing", "ｐａｙｒｏｌｌ", "payroll"],
        "the clashing one is left as it was"
    );
}

/// Tokens stored before allowlists existed work from any address after the upgrade, keep their
/// Last used, and can rotate with an overlap (the new table is there).
async fn tokens_from_before_allowlists_work_from_anywhere_and_rotate_with_an_overlap(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let last = BEFORE_ALLOWLISTS;
    let token = TokenSecret::generate();
    let statements = [format!(
        "INSERT INTO personal_access_tokens (user_id, created_by, name, digest, hint, scopes, \
             created_at, last_used_at, last_used_ip) VALUES (1, 1, 'ci', '{}', '{}', \
             'personalAccessToken:read tag:read', '2026-01-01 00:00:00', '2026-02-01 00:00:00', \
             '192.0.2.1')",
        token.digest().0,
        token.hint()
    )];
    let database = database_with_kim(backend, last, &statements);

    let app = TestApp::spawn_on(database, |_| {}).await;
    let (_, shown) = app
        .api()
        .json("/personal-access-tokens/1", token.expose())
        .await;
    assert!(shown["allowed_addresses"].is_null(), "no list: anywhere");
    assert_eq!(shown["last_used_ip"], "192.0.2.1", "Last used is kept");
    for source in ["127.0.0.1", "127.0.0.2"] {
        let client = crate::helpers::client_from(source);
        let me = client
            .get(format!("{}/api/v1/me", app.address))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK, "from {source}");
    }
    let overlap = Some(serde_json::json!({"overlap": "1h"}));
    let rotated = app
        .api()
        .post_as(crate::helpers::SELF_ROTATE, token.expose(), overlap)
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    assert_eq!(
        rotated["token"]["previous_secret"]["last_used_ip"], "192.0.2.1",
        "the replaced secret keeps its Last used"
    );
    assert_eq!(app.api().me(token.expose()).await.status(), StatusCode::OK);
}

/// A replaced secret stored before it had bounds of its own takes its token's: still refused
/// outside the token's allowlist after the upgrade, still working inside it.
async fn a_replaced_secret_from_before_its_own_bounds_keeps_the_tokens(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let last = BEFORE_PREVIOUS_BOUNDS;
    let (current, replaced) = (TokenSecret::generate(), TokenSecret::generate());
    let statements = [
        format!(
            "INSERT INTO personal_access_tokens (user_id, created_by, name, digest, hint, scopes, \
             created_at, regenerated_at, allowed_addresses) VALUES (1, 1, 'ci', '{}', '{}', \
             'tag:read', '2026-01-01 00:00:00', '2026-11-26 00:00:00', '127.0.0.1')",
            current.digest().0,
            current.hint()
        ),
        format!(
            "INSERT INTO token_previous_secrets (token_id, digest, hint, replaced_at, valid_until) \
             VALUES (1, '{}', '{}', '2026-11-26 00:00:00', '2999-01-01 00:00:00')",
            replaced.digest().0,
            replaced.hint()
        ),
    ];
    let database = database_with_kim(backend, last, &statements);

    let app = TestApp::spawn_on(database, |_| {}).await;
    for (source, expected) in [
        ("127.0.0.1", StatusCode::OK),
        ("127.0.0.2", StatusCode::FORBIDDEN),
    ] {
        for secret in [&current, &replaced] {
            let me = crate::helpers::client_from(source)
                .get(format!("{}/api/v1/me", app.address))
                .bearer_auth(secret.expose())
                .send()
                .await
                .unwrap();
            assert_eq!(me.status(), expected, "from {source}");
        }
    }
}

/// A database made before mail notifications: its token keeps working, and once mail is on its
/// owner is reminded of its expiry (once).
async fn tokens_from_before_mail_keep_working_and_get_their_expiry_reminder(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let last = BEFORE_MAIL;
    let token = TokenSecret::generate();
    let (made, expires) = (
        crate::helpers::days_ago(60).format("%Y-%m-%d %H:%M:%S"),
        crate::helpers::days_ago(-5).format("%Y-%m-%d %H:%M:%S"),
    );
    let statements = [format!(
        "INSERT INTO personal_access_tokens (user_id, created_by, name, digest, hint, scopes, \
             created_at, expires_at) VALUES (1, 1, 'nightly', '{}', '{}', 'tag:read', '{made}', \
             '{expires}')",
        token.digest().0,
        token.hint()
    )];
    let database = database_with_kim(backend, last, &statements);

    let smtp = crate::smtp::SmtpServer::start().await;
    let url = smtp.url(None);
    let app = TestApp::spawn_on(database, |config| {
        config.smtp_url = Some(tokendesk::config::SmtpUrl::new(url));
        config.public_url = Some("https://tokens.example.com".into());
        config.mail_poll_secs = 0.05;
    })
    .await;
    assert_eq!(app.api().me(token.expose()).await.status(), StatusCode::OK);
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].to, ["kim@example.com"]);
    assert!(
        mails[0].subject().contains("“nightly” expires in 7 days"),
        "{}",
        mails[0].subject()
    );
}

async fn a_token_used_before_usage_history_keeps_its_last_address_as_known(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let token = TokenSecret::generate();
    let statements = [format!(
        "INSERT INTO personal_access_tokens (user_id, created_by, name, digest, hint, scopes, \
         created_at, last_used_at, last_used_ip) VALUES (1, 1, 'ci', '{}', '{}', \
         'tag:read', '2026-01-01 00:00:00', '2026-11-20 10:00:00', '127.0.0.5')",
        token.digest().0,
        token.hint()
    )];
    let database = database_with_kim(backend, BEFORE_USAGE, &statements);

    let app = TestApp::spawn_on(database, |_| {}).await;
    let before = app
        .db
        .run(|conn| tokendesk::tokens::usage::pairs_of(conn, 1))
        .await
        .unwrap();
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        (before[0].address.as_str(), before[0].user_agent.as_str()),
        ("127.0.0.5", "")
    );
    // Its old address is not new; another one is, and it is not the token's first use.
    for source in ["127.0.0.5", "127.0.0.6"] {
        let me = crate::helpers::client_from(source)
            .get(format!("{}/api/v1/me", app.address))
            .bearer_auth(token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
    }
    let started = std::time::Instant::now();
    let events = loop {
        let events = app.audit_events("token.used_from_new_address").await;
        if !events.is_empty() || started.elapsed() > std::time::Duration::from_secs(10) {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].client_ip.as_deref(), Some("127.0.0.6"));
}

/// A database made before Last used had a table of its own: each token's last use, address
/// and whether it was ever used are carried over, the inventory sorts by them, a use of a
/// secret from before its regenerate is still told apart, and new uses and new tokens are
/// recorded.
async fn last_used_from_before_its_own_table_is_kept_sorted_and_moves_on(app: TestApp) {
    use tokendesk::tokens::inventory::{self, InventoryFilter, SortBy};
    use tokendesk::tokens::store::{find_owned, TokenOwner};
    let backend = app.backend();
    drop(app);
    let (used, never) = (TokenSecret::generate(), TokenSecret::generate());
    let statements = [
        format!(
            "INSERT INTO personal_access_tokens (user_id, created_by, name, digest, hint, \
             scopes, created_at, regenerated_at, last_used_at, last_used_ip) VALUES (1, 1, \
             'used', '{}', '{}', 'tag:read', '2026-01-01 00:00:00', '2026-11-19 00:00:00', \
             '2026-11-20 10:00:00', '127.0.0.5')",
            used.digest().0,
            used.hint()
        ),
        format!(
            "INSERT INTO personal_access_tokens (user_id, created_by, name, digest, hint, \
             scopes, created_at) VALUES (1, 1, 'never', '{}', '{}', 'tag:read', \
             '2026-01-02 00:00:00')",
            never.digest().0,
            never.hint()
        ),
    ];
    let database = database_with_kim(backend, BEFORE_LAST_USES, &statements);
    let app = TestApp::spawn_on(database, |_| {}).await;

    let at = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    let (carried, unused, by_last_used) = app
        .db
        .run(|conn| {
            let owner = TokenOwner::Person(1);
            let filter = InventoryFilter {
                sort: SortBy::LastUsed,
                ..Default::default()
            };
            Ok::<_, diesel::result::Error>((
                find_owned(conn, owner, 1)?.unwrap(),
                find_owned(conn, owner, 2)?.unwrap(),
                inventory::list(conn, &filter, 0, 10)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(carried.last_used_at, Some(at("2026-11-20 10:00:00")));
    assert_eq!(carried.last_used_ip.as_deref(), Some("127.0.0.5"));
    assert_eq!(carried.regenerated_at, Some(at("2026-11-19 00:00:00")));
    // Kept beside the last use, where the recorder tells a replaced secret's uses apart.
    let secret_since = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use tokendesk::db::schema::token_last_uses as uses;
            uses::table
                .find(1)
                .select(uses::secret_since)
                .first::<Option<chrono::NaiveDateTime>>(conn)
        })
        .await
        .unwrap();
    assert_eq!(secret_since, Some(at("2026-11-19 00:00:00")));
    assert_eq!((unused.last_used_at, unused.last_used_ip), (None, None));
    let order: Vec<&str> = by_last_used.iter().map(|r| r.token.name.as_str()).collect();
    assert_eq!(order, ["never", "used"], "never used first");

    // A use now moves it on; a token made after the upgrade records its uses too.
    let (_, made_after) = app.token_for(1, "made after", &["tag:read"]).await;
    for token in [used.expose(), made_after.as_str()] {
        let me = crate::helpers::client_from("127.0.0.6")
            .get(format!("{}/api/v1/me", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
    }
    let started = std::time::Instant::now();
    loop {
        let (old, new) = (app.last_used_at(1).await, app.last_used_at(3).await);
        if old > Some(at("2026-11-20 10:00:00")) && new.is_some() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "uses written: {old:?}, {new:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.last_used_at(2).await,
        None,
        "the unused one stays Never"
    );
}

/// A database made before provisioning: its members are listed to a provisioning client as
/// they were (no externalId), found by their address, and take an externalId and a
/// deactivation, with their tokens refused after it.
async fn members_from_before_provisioning_are_found_and_changed_by_scim(app: TestApp) {
    use serde_json::{json, Value};
    use tokendesk::tokens::store::TokenOwner;
    let backend = app.backend();
    drop(app);
    let kims_token = TokenSecret::generate();
    let statements = [format!(
        "INSERT INTO personal_access_tokens (user_id, created_by, name, digest, hint, scopes, \
         created_at) VALUES (1, 1, 'ci', '{}', '{}', 'tag:read', '2026-01-01 00:00:00')",
        kims_token.digest().0,
        kims_token.hint()
    )];
    let database = database_with_kim(backend, BEFORE_EXTERNAL_IDS, &statements);
    let app = TestApp::spawn_on(database, |_| {}).await;
    let application = app
        .db
        .write(|conn| tokendesk::applications::insert(conn, "Identity provider", "", 1))
        .await
        .unwrap();
    let owner = TokenOwner::Application(application.id);
    let (_, scim_token) = app.token_of(owner, 1, "scim", &["scim:write"]).await;
    let client = reqwest::Client::new();
    let users = format!("{}/scim/v2/Users", app.address);

    let found: Value = client
        .get(format!(
            "{users}?filter=userName%20eq%20%22kim%40example.com%22"
        ))
        .bearer_auth(&scim_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalResults"], 1, "{found}");
    let kim = &found["Resources"][0];
    assert_eq!(
        (&kim["id"], &kim["displayName"], &kim["active"]),
        (&json!("1"), &json!("Kim"), &json!(true))
    );
    assert!(kim.get("externalId").is_none(), "{kim}");
    let me = app.api().get("/me", kims_token.expose(), Presented::Bearer);
    assert_eq!(me.send().await.unwrap().status(), StatusCode::OK);

    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "externalId", "value": "kim-1"},
        {"op": "replace", "path": "active", "value": false}]});
    let changed: Value = client
        .patch(format!("{users}/1"))
        .bearer_auth(&scim_token)
        .header("content-type", "application/scim+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&changed["externalId"], &changed["active"]),
        (&json!("kim-1"), &json!(false)),
        "{changed}"
    );
    let me = app.api().get("/me", kims_token.expose(), Presented::Bearer);
    assert_eq!(me.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// A database where a provider left one externalId on two members (before it had to be
/// unique): the upgrade keeps it on the active one (though the other changed later), clears
/// it on the other, and keeps both members.
async fn an_external_id_two_members_held_stays_with_the_active_one(app: TestApp) {
    let backend = app.backend();
    drop(app);
    let statements = [
        "UPDATE users SET external_id = 'okta-7' WHERE id = 1".to_owned(),
        "INSERT INTO users (email, display_name, password_hash, role, is_active, created_at, \
         updated_at, external_id) VALUES ('lee@example.com', 'Lee', NULL, 'user', FALSE, \
         '2026-02-01 00:00:00', '2026-02-01 00:00:00', 'okta-7')"
            .to_owned(),
    ];
    let database = database_with_kim(backend, BEFORE_UNIQUE_EXTERNAL_IDS, &statements);
    let app = TestApp::spawn_on(database, |_| {}).await;
    let (kim, lee) = app
        .db
        .run(|conn| {
            Ok((
                tokendesk::users::find(conn, 1)?,
                tokendesk::users::find(conn, 2)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(kim.unwrap().external_id.as_deref(), Some("okta-7"));
    let lee = lee.expect("both members are kept");
    assert_eq!(
        (lee.email.as_str(), lee.external_id),
        ("lee@example.com", None)
    );
}

/// A database made before sign-in through a provider: its members keep signing in with their
/// passwords, and one is linked on their first sign-in through the provider.
async fn members_from_before_sign_in_through_a_provider_keep_their_passwords(app: TestApp) {
    use crate::identity_provider::{Person, Provider};
    let backend = app.backend();
    drop(app);
    let hash = tokendesk::domain::hash_password("kims-password-1").unwrap();
    let statements = [
        format!("UPDATE users SET password_hash = '{hash}' WHERE id = 1"),
        "INSERT INTO audit_events (created_at, action, details) \
         VALUES ('2026-01-01 00:00:00', 'setup.completed', '')"
            .to_owned(),
    ];
    let database = database_with_kim(backend, BEFORE_EXTERNAL_IDS, &statements);
    let provider = Provider::start().await;
    let settings = provider.settings();
    let app = TestApp::spawn_on(database, |config| config.identity_provider = settings).await;
    let password = app.browser();
    let signed_in = password.sign_in("kim@example.com", "kims-password-1").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/developer/access-tokens");

    provider.at_the_keyboard(Person::new("sub-kim", "kim@example.com", "Kim"));
    let browser = app.browser();
    let start = browser.get("/sign-in/sso").await;
    let at_provider = browser.client.get(location(&start)).send().await.unwrap();
    let back = browser
        .client
        .get(location(&at_provider))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let kim = app
        .db
        .run(|conn| tokendesk::users::find(conn, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kim.provider_subject.as_deref(), Some("sub-kim"));
}
