//! How each token is used: the (address, user agent) pairs, bounded; a first use from a new
//! address flags the token (once, across instances) until its owner dismisses it; the scopes a
//! token exercised, and narrowing it to them.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokendesk::domain::Role;
use tokendesk::tokens::usage::{self, UsagePair};

use crate::backend_tests;
use crate::helpers::{client_from, hidden_value, location, user_and_browser, TestApp};

backend_tests!(
    each_address_and_client_is_counted_and_only_the_most_recent_pairs_are_kept,
    a_first_use_from_a_new_address_flags_the_token_until_its_owner_dismisses_it,
    two_instances_seeing_the_same_new_address_at_once_report_it_once,
    the_api_shows_a_tokens_usage_and_the_scopes_it_exercised,
    narrowing_removes_only_the_scopes_never_exercised,
    a_token_that_exercised_nothing_cannot_be_narrowed_to_nothing,
    an_admin_sees_any_tokens_usage_from_the_inventory,
);

/// One request as a client at `from` sending `agent`, to `address` (an instance).
pub async fn use_from(address: &str, token: &str, from: &str, agent: &str) {
    let response = client_from(from)
        .get(format!("{address}/api/v1/me"))
        .bearer_auth(token)
        .header("user-agent", agent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Polls `probe` until it returns Some (the recorder writes every 0.3 s in tests).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pairs(app: &TestApp, token_id: i64) -> Vec<UsagePair> {
    app.db
        .run(move |conn| usage::pairs_of(conn, token_id))
        .await
        .unwrap()
}

/// The rows stored for a token, whatever the page shows.
async fn stored_pair_count(app: &TestApp, token_id: i64) -> i64 {
    use diesel::prelude::*;
    use tokendesk::db::schema::token_usage;
    app.db
        .run(move |conn| {
            token_usage::table
                .filter(token_usage::token_id.eq(token_id))
                .count()
                .get_result(conn)
        })
        .await
        .unwrap()
}

async fn each_address_and_client_is_counted_and_only_the_most_recent_pairs_are_kept(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app.token_for(user.id, "ci", &["tag:read"]).await;
    for _ in 0..3 {
        use_from(&app.address, &token, "127.0.0.1", "deploy-bot/1.0").await;
    }
    use_from(&app.address, &token, "127.0.0.2", "curl/8.5").await;
    let seen = eventually("two pairs", || async {
        let seen = pairs(&app, id).await;
        (seen.iter().map(|p| p.use_count).sum::<i64>() == 4).then_some(seen)
    })
    .await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    let bot = seen.iter().find(|p| p.address == "127.0.0.1").unwrap();
    assert_eq!(
        (bot.user_agent.as_str(), bot.use_count),
        ("deploy-bot/1.0", 3)
    );
    assert!(bot.first_seen_at <= bot.last_seen_at);
    let curl = seen.iter().find(|p| p.address == "127.0.0.2").unwrap();
    assert_eq!((curl.user_agent.as_str(), curl.use_count), ("curl/8.5", 1));

    // Thirty more clients: the twenty seen last are kept, the older ones give way.
    for i in 0..30 {
        use_from(&app.address, &token, "127.0.0.3", &format!("agent {i:02}")).await;
        if i % 10 == 9 {
            // Spread over several writes, so pairs arrive at a table that already has some.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
    eventually("the last agent", || async {
        let seen = pairs(&app, id).await;
        seen.iter()
            .any(|p| p.user_agent == "agent 29")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(stored_pair_count(&app, id).await, 20);
    let kept = pairs(&app, id).await;
    assert!(kept.iter().all(|p| p.address == "127.0.0.3"), "{kept:?}");
    assert!(kept.iter().any(|p| p.user_agent == "agent 29"));
    assert!(!kept.iter().any(|p| p.user_agent == "agent 00"));
    assert!(kept
        .windows(2)
        .all(|w| w[0].last_seen_at >= w[1].last_seen_at));
}

async fn a_first_use_from_a_new_address_flags_the_token_until_its_owner_dismisses_it(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let user_id = user.id;
    let (id, token) = app.token_for(user_id, "deploy", &["tag:read"]).await;

    // Its very first use is no news.
    use_from(&app.address, &token, "127.0.0.1", "deploy-bot/1.0").await;
    eventually("the first use", || async {
        (!pairs(&app, id).await.is_empty()).then_some(())
    })
    .await;
    let list = browser.page("/developer/access-tokens").await;
    assert!(!list.contains("New address"), "{list}");

    use_from(&app.address, &token, "127.0.0.2", "stranger/0.1").await;
    let events = eventually("the audit event", || async {
        let events = app.audit_events("token.used_from_new_address").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_ip.as_deref(), Some("127.0.0.2"));
    assert_eq!(events[0].target_id, Some(id));
    assert!(
        events[0].details.contains("stranger/0.1"),
        "{}",
        events[0].details
    );

    let list = browser.page("/developer/access-tokens").await;
    assert!(list.contains("New address"), "{list}");
    assert!(
        list.contains("first use from <code>127.0.0.2</code>"),
        "{list}"
    );
    let page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    assert!(page.contains("Used from a new address"), "{page}");
    assert!(page.contains("stranger/0.1"));

    // Used again from there: known now, no second event.
    use_from(&app.address, &token, "127.0.0.2", "stranger/0.1").await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        app.audit_events("token.used_from_new_address").await.len(),
        1
    );

    // Dismissed from the list (back to it), by its owner only.
    let (address, seen) = (hidden_value(&list, "address"), hidden_value(&list, "seen"));
    let dismissed = browser
        .submit_form(
            "/developer/access-tokens",
            &format!("/developer/access-tokens/{id}/dismiss-new-address"),
            &[("address", &address), ("seen", &seen), ("back", "list")],
        )
        .await;
    assert_eq!(dismissed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&dismissed), "/developer/access-tokens");
    let list = browser.page("/developer/access-tokens").await;
    assert!(!list.contains("first use from"), "{list}");
    assert_eq!(
        app.audit_events("token.new_address_dismissed").await.len(),
        1
    );
    let (_, other) = user_and_browser(&app, "mallory@example.com", Role::User).await;
    let foreign = other
        .submit_form(
            "/developer/access-tokens",
            &format!("/developer/access-tokens/{id}/dismiss-new-address"),
            &[],
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);

    // A third address raises it again.
    use_from(&app.address, &token, "127.0.0.3", "").await;
    eventually("the second flag", || async {
        let list = browser.page("/developer/access-tokens").await;
        list.contains("first use from <code>127.0.0.3</code>")
            .then_some(())
    })
    .await;
}

async fn two_instances_seeing_the_same_new_address_at_once_report_it_once(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app.token_for(user.id, "deploy", &["tag:read"]).await;
    let second = app.another_instance(|_| {}).await;
    use_from(&app.address, &token, "127.0.0.1", "deploy-bot/1.0").await;
    eventually("the first use", || async {
        (!pairs(&app, id).await.is_empty()).then_some(())
    })
    .await;

    // The same new address at both instances, in the same moment, with different clients.
    let mut uses = Vec::new();
    for round in 0..10 {
        for (address, agent) in [(&app.address, "a"), (&second, "b")] {
            let (address, token) = (address.clone(), token.clone());
            let agent = format!("{agent}/{round}");
            uses.push(tokio::spawn(async move {
                use_from(&address, &token, "127.0.0.9", &agent).await;
            }));
        }
    }
    for used in uses {
        used.await.unwrap();
    }
    eventually("every pair written", || async {
        let seen = pairs(&app, id).await;
        (seen.iter().filter(|p| p.address == "127.0.0.9").count() == 20).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let events = app.audit_events("token.used_from_new_address").await;
    assert_eq!(events.len(), 1, "{events:?}");
}

async fn the_api_shows_a_tokens_usage_and_the_scopes_it_exercised(app: TestApp) {
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app
        .token_for(
            user.id,
            "reader",
            &["personalAccessToken:read", "tag:read", "tag:write"],
        )
        .await;
    // tag:read through a gateway check; personalAccessToken:read by the API route below.
    let verified = app
        .api()
        .verify("?scope=tag:read", &[("x-auth-token", &token)])
        .await;
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);
    let (status, shown) = eventually("tag:read exercised", || async {
        let (status, shown) = app
            .api()
            .json(&format!("/personal-access-tokens/{id}"), &token)
            .await;
        let exercised = shown["scopes_exercised"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["scope"] == "tag:read" && s["last_exercised_at"].is_string());
        exercised.then_some((status, shown))
    })
    .await;
    assert_eq!(status, StatusCode::OK);
    let scopes = shown["scopes_exercised"].as_array().unwrap();
    assert_eq!(scopes.len(), 3, "{shown}");
    let of = |name: &str| {
        scopes
            .iter()
            .find(|s| s["scope"] == name)
            .unwrap_or_else(|| panic!("{name} in {shown}"))
    };
    assert!(of("tag:write")["last_exercised_at"].is_null());
    assert!(shown["scopes_exercised_since"].is_string());
    let usage = shown["usage"].as_array().expect("usage");
    assert_eq!(usage[0]["address"], "127.0.0.1");
    assert!(usage[0]["uses"].as_i64().unwrap() >= 1);
    assert!(shown["new_address"].is_null());
    // A list shows none of it: it is one token's view.
    let (_, list) = app.api().json("/personal-access-tokens", &token).await;
    assert!(list["tokens"][0].get("usage").is_none(), "{list}");
}

async fn narrowing_removes_only_the_scopes_never_exercised(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let user_id = user.id;
    let (id, token) = app
        .token_for(user_id, "ci", &["tag:read", "tag:write", "license:read"])
        .await;
    for scope in ["tag:read", "license:read"] {
        let verified = app
            .api()
            .verify(&format!("?scope={scope}"), &[("x-auth-token", &token)])
            .await;
        assert_eq!(verified.status(), StatusCode::NO_CONTENT);
    }
    // A scope asked about and refused is not exercised.
    let refused = app
        .api()
        .verify("?scope=license:write", &[("x-auth-token", &token)])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let page = eventually("the page to show the narrowing", || async {
        let page = browser
            .page(&format!("/developer/access-tokens/{id}"))
            .await;
        page.contains("Narrow to what is used").then_some(page)
    })
    .await;
    assert!(page.contains("not exercised yet"), "{page}");
    let confirm = browser
        .page(&format!("/developer/access-tokens/{id}/narrow"))
        .await;
    assert!(confirm.contains("Remove 1 scope"), "{confirm}");
    // The form lists what it removes; a forged field asking for more removes nothing more.
    let narrowed = browser
        .submit_form(
            &format!("/developer/access-tokens/{id}/narrow"),
            &format!("/developer/access-tokens/{id}/narrow"),
            &[("remove", "tag:write"), ("remove", "tag:read")],
        )
        .await;
    assert_eq!(narrowed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&narrowed),
        format!("/developer/access-tokens/{id}")
    );
    let page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    assert!(page.contains("no longer holds tag:write"), "{page}");
    let stored = crate::helpers::stored_tokens(&app, user_id).await;
    let scopes = &stored.iter().find(|t| t.id == id).unwrap().scopes;
    assert_eq!(scopes, "license:read tag:read");
    let events = app.audit_events("token.narrowed").await;
    assert_eq!(events.len(), 1);
    assert!(events[0]
        .details
        .contains("removed the scopes it never exercised: tag:write"));
    // Refused at once, and the kept ones still work.
    let write = app
        .api()
        .verify("?scope=tag:write", &[("x-auth-token", &token)])
        .await;
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    let read = app
        .api()
        .verify("?scope=tag:read", &[("x-auth-token", &token)])
        .await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    // Nothing left to narrow: the page says so, with no button.
    let again = browser
        .page(&format!("/developer/access-tokens/{id}/narrow"))
        .await;
    assert!(
        again.contains("has exercised every scope it holds"),
        "{again}"
    );
    assert!(!again.contains(&format!("action=\"/developer/access-tokens/{id}/narrow\"")));
}

async fn a_token_that_exercised_nothing_cannot_be_narrowed_to_nothing(app: TestApp) {
    let (user, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let user_id = user.id;
    let (id, _) = app.token_for(user_id, "idle", &["tag:read"]).await;
    let page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    assert!(!page.contains("Narrow to what is used"), "{page}");
    let forged = browser
        .submit_form(
            "/developer/access-tokens",
            &format!("/developer/access-tokens/{id}/narrow"),
            &[("remove", "tag:read")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);
    let page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    assert!(
        page.contains("has not exercised any of its scopes yet"),
        "{page}"
    );
    let stored = crate::helpers::stored_tokens(&app, user_id).await;
    assert_eq!(
        stored.iter().find(|t| t.id == id).unwrap().scopes,
        "tag:read"
    );
    assert!(app.audit_events("token.narrowed").await.is_empty());
}

async fn an_admin_sees_any_tokens_usage_from_the_inventory(app: TestApp) {
    let admin = app.setup_admin().await;
    let user = app
        .create_user("grace@example.com", "grace-password-1", Role::User)
        .await;
    let (id, token) = app
        .token_for(user.id, "Grace's deploy <script>", &["tag:read"])
        .await;
    use_from(&app.address, &token, "127.0.0.4", "deploy-bot/2.0").await;
    let inventory = admin.page("/admin/access-tokens").await;
    assert!(inventory.contains(&format!("href=\"/admin/access-tokens/{id}\"")));
    let page = eventually("the usage on the admin's page", || async {
        let page = admin.page(&format!("/admin/access-tokens/{id}")).await;
        page.contains("deploy-bot/2.0").then_some(page)
    })
    .await;
    assert!(page.contains("<code>127.0.0.4</code>"), "{page}");
    assert!(
        page.contains("Grace&#39;s deploy &#60;script&#62;"),
        "{page}"
    );
    assert!(!page.contains("<script>"));
    assert!(page.contains("grace@example.com"));
    // A member is not an admin.
    let (_, member) = user_and_browser(&app, "linus@example.com", Role::User).await;
    let refused = member.get(&format!("/admin/access-tokens/{id}")).await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
}
