//! The CSV exports over many pages: every row exactly once, in the page's order, whatever the
//! sort and however many rows share a sort key; and more tokens than a query may bind
//! variables (SQLite's 32,766).

use std::collections::HashSet;

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use tokendesk::db::schema::{
    audit_events, personal_access_tokens as pat, token_last_uses as uses, users,
};
use tokendesk::db::AnyConnection;

use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(
    the_inventory_export_holds_every_token_once_in_each_order,
    the_audit_export_holds_every_event_once_newest_first,
    an_export_of_more_tokens_than_bind_variables_by_many_people,
    a_token_used_during_an_export_is_written_once,
    odd_filters_answer_a_complete_export_or_a_refusal,
    no_name_becomes_a_formula_where_semicolons_separate_cells,
    only_an_active_admin_exports,
);

/// Rows an export spans: more than two pages (`csv::PAGE` is 2,000).
const MANY: usize = 4_500;
const ROWS_A_STATEMENT: usize = 1_000;

/// The CSV body of `path` as records, the header first.
async fn export(admin: &crate::helpers::Browser, path: &str) -> Vec<Vec<String>> {
    let response = admin.get(path).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
    let body = response.text().await.unwrap();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// `rows` inserted a thousand a statement: multi-row INSERTs go through the concrete
/// connections, which support them natively.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        for chunk in $rows.chunks(ROWS_A_STATEMENT) {
            match &mut *$conn {
                AnyConnection::Sqlite(c) => diesel::insert_into($table).values(chunk).execute(c),
                AnyConnection::Postgresql(c) => {
                    diesel::insert_into($table).values(chunk).execute(c)
                }
            }?;
        }
    };
}

/// `count` people `owner-{n}@example.com`, in one transaction; their ids.
async fn seed_people(app: &TestApp, count: usize) -> Vec<i64> {
    app.db
        .write(move |conn| {
            let now = Utc::now().naive_utc();
            let rows: Vec<_> = (0..count)
                .map(|n| {
                    (
                        users::email.eq(format!("owner-{n}@example.com")),
                        users::display_name.eq(format!("Owner {n}")),
                        users::role.eq("user"),
                        users::is_active.eq(true),
                        users::created_at.eq(now),
                        users::updated_at.eq(now),
                    )
                })
                .collect();
            insert_rows!(conn, users::table, rows);
            users::table
                .filter(users::email.like("owner-%"))
                .order(users::id.asc())
                .select(users::id)
                .load(conn)
        })
        .await
        .unwrap()
}

/// A seeded token's times, by its number: few distinct values, so hundreds of tokens share
/// each sort key and ties cross the pages' edges.
fn times(
    n: usize,
    base: NaiveDateTime,
) -> (NaiveDateTime, Option<NaiveDateTime>, Option<NaiveDateTime>) {
    let created = base - Duration::minutes((n % 5) as i64);
    let expires = (!n.is_multiple_of(4)).then(|| base + Duration::days(1 + (n % 3) as i64));
    let last_used = (!n.is_multiple_of(3)).then(|| base - Duration::hours((n % 4) as i64));
    (created, expires, last_used)
}

/// `count` tokens `t-{n}`, spread over `owners` (every tenth token the application's), in one
/// transaction.
async fn seed_tokens(app: &TestApp, owners: Vec<i64>, application_id: Option<i64>, count: usize) {
    app.db
        .write(move |conn| {
            let base = Utc::now().naive_utc() - Duration::days(1);
            let rows: Vec<_> = (0..count)
                .map(|n| {
                    let (created, expires, _) = times(n, base);
                    let application = application_id.filter(|_| n % 10 == 9);
                    let owner = application.is_none().then(|| owners[n % owners.len()]);
                    (
                        pat::user_id.eq(owner),
                        pat::application_id.eq(application),
                        pat::name.eq(format!("t-{n}")),
                        pat::digest.eq(format!("digest-{n}")),
                        pat::hint.eq("tdk_AAAA…AAAA"),
                        pat::scopes.eq("tag:read"),
                        pat::created_at.eq(created),
                        pat::expires_at.eq(expires),
                    )
                })
                .collect();
            insert_rows!(conn, pat::table, rows);
            // Last used, in its own table: the tokens sharing each time, a chunk at a time.
            let mut by_time = std::collections::BTreeMap::<_, Vec<String>>::new();
            for n in 0..count {
                if let (_, _, Some(at)) = times(n, base) {
                    by_time.entry(at).or_default().push(format!("digest-{n}"));
                }
            }
            for (at, digests) in by_time {
                for chunk in digests.chunks(ROWS_A_STATEMENT) {
                    let ids = pat::table.filter(pat::digest.eq_any(chunk)).select(pat::id);
                    diesel::update(uses::table.filter(uses::token_id.eq_any(ids)))
                        .set(uses::last_used_at.eq(at))
                        .execute(conn)?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
}

type Times = (
    i64,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

/// Every token's id and times, as stored.
async fn stored_times(app: &TestApp) -> Vec<Times> {
    app.db
        .run(|conn| {
            pat::table
                .inner_join(uses::table)
                .select((
                    pat::id,
                    pat::created_at,
                    pat::expires_at,
                    uses::last_used_at,
                ))
                .load(conn)
        })
        .await
        .unwrap()
}

/// The ids in the inventory's order for `sort`, worked out here.
fn in_order(mut tokens: Vec<Times>, sort: &str) -> Vec<i64> {
    match sort {
        // Never used first, then the oldest use.
        "last_used" => tokens.sort_by_key(|&(id, _, _, used)| (used.is_some(), used, id)),
        // Newest first.
        "created" => tokens.sort_by_key(|&(id, created, _, _)| std::cmp::Reverse((created, id))),
        // Soonest expiry first, no expiry last.
        "expires" => tokens.sort_by_key(|&(id, _, expires, _)| (expires.is_none(), expires, id)),
        _ => unreachable!(),
    }
    tokens.into_iter().map(|(id, ..)| id).collect()
}

fn ids(records: &[Vec<String>]) -> Vec<i64> {
    records[1..].iter().map(|r| r[0].parse().unwrap()).collect()
}

async fn the_inventory_export_holds_every_token_once_in_each_order(app: TestApp) {
    let admin = app.setup_admin().await;
    let owners = seed_people(&app, 7).await;
    let application = app
        .db
        .write(move |conn| tokendesk::applications::insert(conn, "billing", "", 1))
        .await
        .unwrap();
    seed_tokens(&app, owners.clone(), Some(application.id), MANY).await;
    let stored = stored_times(&app).await;
    assert_eq!(stored.len(), MANY);
    for sort in ["last_used", "created", "expires"] {
        let records = export(&admin, &format!("/admin/access-tokens.csv?sort={sort}")).await;
        let exported = ids(&records);
        assert_eq!(
            exported.iter().collect::<HashSet<_>>().len(),
            MANY,
            "{sort}: every token once"
        );
        assert_eq!(
            exported,
            in_order(stored.clone(), sort),
            "{sort}: the page's order"
        );
        // Owners come from the same rows: a person's email, or the application's name.
        for record in &records[1..] {
            let n: usize = record[4].trim_start_matches("t-").parse().unwrap();
            if n % 10 == 9 {
                assert_eq!(
                    (record[1].as_str(), record[2].as_str()),
                    ("application", "")
                );
                assert_eq!(record[3], "billing");
            } else {
                let owner = n % owners.len();
                assert_eq!(record[2], format!("owner-{owner}@example.com"));
            }
        }
    }
    // The filters apply on every page: one owner's tokens, by expiry.
    let owner_ids: HashSet<i64> = app
        .db
        .run(move |conn| {
            pat::table
                .filter(pat::user_id.eq(owners[3]))
                .select(pat::id)
                .load::<i64>(conn)
        })
        .await
        .unwrap()
        .into_iter()
        .collect();
    let records = export(
        &admin,
        "/admin/access-tokens.csv?sort=expires&owner=owner-3",
    )
    .await;
    let expected: Vec<i64> = in_order(stored, "expires")
        .into_iter()
        .filter(|id| owner_ids.contains(id))
        .collect();
    assert!(expected.len() > 500);
    assert_eq!(ids(&records), expected);
}

async fn the_audit_export_holds_every_event_once_newest_first(app: TestApp) {
    let admin = app.setup_admin().await;
    let people = seed_people(&app, 3).await;
    let actors = people.clone();
    app.db
        .write(move |conn| {
            let now = Utc::now().naive_utc();
            let rows: Vec<_> = (0..MANY)
                .map(|n| {
                    (
                        // Every one of them at the same time; some by nobody.
                        audit_events::created_at.eq(now),
                        audit_events::actor_id.eq((!n.is_multiple_of(4)).then(|| actors[n % 3])),
                        audit_events::action.eq("token.created"),
                        audit_events::details.eq(format!("event-{n}")),
                    )
                })
                .collect();
            insert_rows!(conn, audit_events::table, rows);
            Ok(())
        })
        .await
        .unwrap();
    // Newest first: the order the trail was recorded in, reversed.
    let stored: Vec<(String, Option<i64>)> = app
        .db
        .run(|conn| {
            audit_events::table
                .order(audit_events::id.desc())
                .select((audit_events::details, audit_events::actor_id))
                .load(conn)
        })
        .await
        .unwrap();
    let records = export(&admin, "/admin/audit.csv").await;
    assert_eq!(records[0][0], "time_utc");
    let details: Vec<&str> = records[1..].iter().map(|r| r[5].as_str()).collect();
    let expected: Vec<&str> = stored.iter().map(|(d, _)| d.as_str()).collect();
    assert!(expected.len() > MANY);
    assert_eq!(details, expected);
    // One actor's events, across pages as well.
    let records = export(&admin, "/admin/audit.csv?actor=owner-1").await;
    let details: Vec<&str> = records[1..].iter().map(|r| r[5].as_str()).collect();
    let expected: Vec<&str> = stored
        .iter()
        .filter(|(_, actor)| *actor == Some(people[1]))
        .map(|(d, _)| d.as_str())
        .collect();
    assert!(expected.len() > 1_000);
    assert_eq!(details, expected);
}

/// The inventory once loaded owners with a bind variable a token: past 32,766 tokens SQLite
/// answered 500 ("too many SQL variables").
async fn an_export_of_more_tokens_than_bind_variables_by_many_people(app: TestApp) {
    const TOKENS: usize = 33_000;
    let admin = app.setup_admin().await;
    let owners = seed_people(&app, 3_000).await;
    seed_tokens(&app, owners, None, TOKENS).await;
    let records = export(&admin, "/admin/access-tokens.csv").await;
    let exported = ids(&records);
    assert_eq!(exported.len(), TOKENS);
    assert_eq!(exported.iter().collect::<HashSet<_>>().len(), TOKENS);
    assert!(records[1..].iter().all(|r| r[2].starts_with("owner-")));
}

/// Tokens used while an export runs move to the end of the Last used order, where the export
/// meets them again: each is written once. (The export's pages read one by one, with the
/// tokens used between the first and the second.)
async fn a_token_used_during_an_export_is_written_once(app: TestApp) {
    use tokendesk::tokens::inventory::{Export, InventoryFilter};
    app.setup_admin().await;
    let owners = seed_people(&app, 7).await;
    seed_tokens(&app, owners, None, MANY).await;
    let written: Vec<i64> = app
        .db
        .run(|conn| {
            let (first, mut export) = Export::new(InventoryFilter::default())
                .next_page(conn, 2_000)?
                .expect("a first page");
            let mut written: Vec<i64> = first.iter().map(|row| row.token.id).collect();
            // Never used until now: the first page's first 500 tokens.
            diesel::update(uses::table.filter(uses::token_id.eq_any(&written[..500])))
                .set(uses::last_used_at.eq(Utc::now().naive_utc()))
                .execute(conn)?;
            while let Some((rows, rest)) = export.next_page(conn, 2_000)? {
                written.extend(rows.iter().map(|row| row.token.id));
                export = rest;
            }
            Ok(written)
        })
        .await
        .unwrap();
    assert_eq!(written.len(), MANY);
    assert_eq!(written.iter().collect::<HashSet<_>>().len(), MANY);
}

/// Filters a person could type or paste: never a server error, never a download cut short.
async fn odd_filters_answer_a_complete_export_or_a_refusal(app: TestApp) {
    let admin = app.setup_admin().await;
    let long = "a".repeat(10_000);
    let values = [
        "%00", "a%00b", "%FF", "%C3%28", "%25", "_", "%5C", "%5C%25", &long,
    ];
    for value in values {
        for path in [
            format!("/admin/access-tokens.csv?name={value}"),
            format!("/admin/access-tokens.csv?owner={value}"),
            format!("/admin/access-tokens.csv?scope={value}&sort=last_used"),
            format!("/admin/access-tokens.csv?leaked={value}"),
            format!("/admin/audit.csv?actor={value}"),
            format!("/admin/audit.csv?action={value}"),
            format!("/admin/audit.csv?from={value}"),
        ] {
            let shown = &path[..path.len().min(60)];
            let response = admin.get(&path).await;
            let status = response.status();
            assert!(
                status.is_success() || status.is_client_error(),
                "{status} for {shown}"
            );
            assert!(response.bytes().await.is_ok(), "cut short: {shown}");
        }
    }
}

/// Excel where `;` separates list items (most of Europe) splits an unquoted `a;=1+2` into a
/// cell `=1+2`, and runs it.
async fn no_name_becomes_a_formula_where_semicolons_separate_cells(app: TestApp) {
    let admin = app.setup_admin().await;
    let grace = app
        .create_user(
            "grace@example.com",
            "grace-password-1",
            tokendesk::domain::Role::User,
        )
        .await;
    for name in ["ci;=1+2", "ci;+SUM(1)", "ci;-2+3", "ci;@SUM(1)"] {
        app.token_for(grace.id, name, &["tag:read"]).await;
    }
    let body = admin
        .get("/admin/access-tokens.csv")
        .await
        .text()
        .await
        .unwrap();
    let cells: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(b';')
        .flexible(true)
        .from_reader(body.as_bytes())
        .records()
        .flat_map(|record| {
            record
                .unwrap()
                .iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    for cell in cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "a formula cell {cell:?} in:\n{body}"
        );
    }
}

/// Signed out, a member, an admin demoted or deactivated since signing in (the cookie kept):
/// no export, not even its header row.
async fn only_an_active_admin_exports(app: TestApp) {
    use tokendesk::domain::Role;
    let ada = app.setup_admin().await;
    let (_, grace_browser) =
        crate::helpers::user_and_browser(&app, "grace@example.com", Role::User).await;
    let (bob, bob_browser) =
        crate::helpers::user_and_browser(&app, "bob@example.com", Role::Admin).await;
    let (carol, carol_browser) =
        crate::helpers::user_and_browser(&app, "carol@example.com", Role::Admin).await;
    let exports = ["/admin/access-tokens.csv", "/admin/audit.csv"];
    for path in exports {
        for browser in [&ada, &bob_browser] {
            let header = export(browser, path).await[0].join(",");
            assert!(exports_header(path).starts_with(&header[..10]));
        }
    }
    app.set_member(bob.id, Role::User, true).await;
    app.set_member(carol.id, Role::Admin, false).await;
    let signed_out = app.browser();
    for browser in [&signed_out, &grace_browser, &bob_browser, &carol_browser] {
        for path in exports {
            let response = browser.get(path).await;
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                !status.is_success() && !body.contains(exports_header(path)),
                "{status} for {path}: {body}"
            );
        }
    }
}

fn exports_header(path: &str) -> &'static str {
    if path.contains("audit") {
        "time_utc,actor,action"
    } else {
        "id,kind,owner_email"
    }
}
