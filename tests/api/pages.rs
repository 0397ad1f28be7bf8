//! What the pages say: tabs, the token's own page, refusals that look like errors, the New
//! token form's guidance, the inventory's wording and the audit trail's.

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{days_ago, location, user_and_browser, TestApp, TokenTimes};

backend_tests!(
    expired_tokens_have_their_own_tab,
    a_regenerated_token_keeps_its_created_date,
    a_demoted_owner_sees_which_scopes_no_longer_work,
    a_tokens_own_page_shows_its_long_name_whole,
    refusals_look_like_errors,
    the_new_token_form_says_where_each_expiry_leads,
    a_refused_new_token_form_lists_what_to_fix,
    the_inventory_agrees_in_number_and_follows_its_sort,
    a_single_revoke_returns_to_the_filtered_inventory,
    a_bad_page_number_gets_a_page_not_a_bare_error,
    audit_dates_beyond_the_calendar_are_field_errors,
    a_bulk_revoke_says_in_words_what_it_matches,
);

async fn expired_tokens_have_their_own_tab(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (expired, _) = app.token_for(grace.id, "old-ci", &["tag:read"]).await;
    app.token_for(grace.id, "ci", &["tag:read"]).await;
    let times = TokenTimes {
        expires_at: Some(days_ago(1)),
        ..TokenTimes::default()
    };
    app.set_token_times(expired, times).await;

    let active = browser.page("/developer/access-tokens").await;
    assert!(
        active.contains("Active <span class=\"count\">1</span>"),
        "{active}"
    );
    assert!(active.contains("Expired <span class=\"count\">1</span>"));
    assert!(active.contains("title=\"ci\"") && !active.contains("old-ci"));
    let expired_tab = browser.page("/developer/access-tokens?tab=expired").await;
    assert!(expired_tab.contains("title=\"old-ci\"") && !expired_tab.contains("title=\"ci\""));
    let regenerate = browser
        .page(&format!("/developer/access-tokens/{expired}/regenerate"))
        .await;
    assert!(
        regenerate.contains("This token has expired"),
        "{regenerate}"
    );
}

async fn a_regenerated_token_keeps_its_created_date(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let (id, _) = app.token_for(grace.id, "ci", &["tag:read"]).await;
    let made = days_ago(40);
    let times = TokenTimes {
        created_at: Some(made),
        ..TokenTimes::default()
    };
    app.set_token_times(id, times).await;
    let path = format!("/developer/access-tokens/{id}/regenerate");
    let response = browser
        .submit_form(&path, &path, &[("expires_in", "30")])
        .await;
    assert_eq!(location(&response), "/developer/access-tokens/reveal");

    let page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    let created = made.format("%Y-%m-%d").to_string();
    assert!(
        page.contains(&format!("<dt>Created</dt><dd><time title=\"{created}")),
        "{page}"
    );
    assert!(page.contains("<dt>Regenerated</dt>"));
}

async fn a_demoted_owner_sees_which_scopes_no_longer_work(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::Admin).await;
    let (mixed, _) = app
        .token_for(grace.id, "mixed", &["tag:read", "license:write"])
        .await;
    let (writer, _) = app.token_for(grace.id, "writer", &["license:write"]).await;
    app.set_member(grace.id, Role::User, true).await;

    let list = browser.page("/developer/access-tokens").await;
    assert!(
        list.contains("2 scopes <span class=\"muted\">(1 allowed)</span></summary>"),
        "{list}"
    );
    let mixed_page = browser
        .page(&format!("/developer/access-tokens/{mixed}"))
        .await;
    assert!(mixed_page.contains("not allowed for your role"));
    assert!(!mixed_page.contains("can do nothing"));
    let writer_page = browser
        .page(&format!("/developer/access-tokens/{writer}"))
        .await;
    assert!(writer_page.contains("Your role allows none of this token's scopes"));
}

async fn a_tokens_own_page_shows_its_long_name_whole(app: TestApp) {
    let (grace, browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let name = format!("nightly export of every licence {}", "x".repeat(68));
    assert_eq!(name.chars().count(), 100);
    let (id, _) = app.token_for(grace.id, &name, &["tag:read"]).await;
    let list = browser.page("/developer/access-tokens").await;
    assert!(list.contains(&format!(
        "class=\"truncate token-name\" href=\"/developer/access-tokens/{id}\" title=\"{name}\""
    )));
    let page = browser
        .page(&format!("/developer/access-tokens/{id}"))
        .await;
    assert!(page.contains(&format!("<h1 class=\"wrap-anywhere\">{name}</h1>")));
    let (_, other) = user_and_browser(&app, "linus@example.com", Role::User).await;
    let foreign = other.get(&format!("/developer/access-tokens/{id}")).await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
}

async fn refusals_look_like_errors(app: TestApp) {
    let admin = app.setup_admin().await;
    let members = admin.page("/admin/members").await;
    let ada_id = members
        .split("/admin/members/")
        .filter_map(|rest| rest.split('/').next()?.parse::<i64>().ok())
        .min()
        .expect("a member id");
    let path = format!("/admin/members/{ada_id}/role");
    admin
        .submit_form("/admin/members", &path, &[("role", "user")])
        .await;
    let after = admin.page("/admin/members").await;
    assert!(
        after.contains("<div class=\"alert alert-error\" role=\"alert\">")
            && after.contains("last active admin"),
        "{after}"
    );
}

async fn the_new_token_form_says_where_each_expiry_leads(app: TestApp) {
    let admin = app.setup_admin().await;
    let form = admin.page("/developer/access-tokens/new").await;
    let in_30 = (chrono::Utc::now() + chrono::Duration::days(30)).format("%b %-d, %Y");
    assert!(form.contains("The token will expire on "), "{form}");
    assert!(
        form.contains(&in_30.to_string()),
        "the default's date is shown"
    );
    assert!(form.contains("data-warning>No expiration</option>"));
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d");
    assert!(
        form.contains(&format!("min=\"{tomorrow}\"")),
        "the date picker starts tomorrow"
    );
    assert!(form.contains(" autofocus"), "Name is focused");

    admin.set_token_policy("90", "30").await;
    let bounded = admin.page("/developer/access-tokens/new").await;
    let last = (chrono::Utc::now() + chrono::Duration::days(89)).format("%Y-%m-%d");
    assert!(
        bounded.contains(&format!("max=\"{last}\"")),
        "the policy bounds the picker"
    );
}

async fn a_refused_new_token_form_lists_what_to_fix(app: TestApp) {
    let admin = app.setup_admin().await;
    let response = admin
        .submit_new_token(&[("name", ""), ("expires_in", "custom"), ("expires_on", "")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    let summary = &html[html.find("id=\"error-summary\"").expect("an error summary")..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    assert!(summary.contains("data-focus-on-load") && summary.contains("3 things"));
    let links: Vec<&str> = summary
        .split("<a href=\"#")
        .skip(1)
        .map(|l| &l[..l.find('"').unwrap()])
        .collect();
    assert_eq!(
        links,
        ["name", "expires_on", "scopes"],
        "in the order of the fields"
    );
    assert!(
        !html.contains(" autofocus"),
        "the summary takes the focus, not Name"
    );
}

async fn the_inventory_agrees_in_number_and_follows_its_sort(app: TestApp) {
    let admin = app.setup_admin().await;
    admin.create_token("only", "30", &["tag:read"]).await;
    let html = admin.page("/admin/access-tokens").await;
    assert!(html.contains("1 token matches."), "{html}");
    assert!(html.contains("Sorted by Last used: the stale ones come first."));
    admin.create_token("second", "30", &["tag:read"]).await;
    let by_created = admin.page("/admin/access-tokens?sort=created").await;
    assert!(by_created.contains("2 tokens match."));
    assert!(by_created.contains("Sorted by Created: the newest first."));
    assert!(
        by_created.contains("<span class=\"muted\">Never</span>"),
        "never used"
    );
}

async fn a_single_revoke_returns_to_the_filtered_inventory(app: TestApp) {
    let admin = app.setup_admin().await;
    admin.create_token("ci", "30", &["tag:read"]).await;
    let filtered = admin
        .page("/admin/access-tokens?name=ci&sort=created")
        .await;
    let end = filtered.find("/revoke?").expect("a Revoke link");
    let start = filtered[..end].rfind('"').unwrap() + 1;
    let revoke_link = filtered[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    assert!(
        revoke_link.ends_with("/revoke?name=ci&sort=created"),
        "{revoke_link}"
    );
    let confirm = admin.page(&revoke_link).await;
    assert!(
        confirm.contains("href=\"/admin/access-tokens?name=ci&#38;sort=created\""),
        "Cancel keeps the filters"
    );
    let response = admin
        .submit_form(&revoke_link, &revoke_link, &[("confirm", "DELETE")])
        .await;
    assert_eq!(
        location(&response),
        "/admin/access-tokens?name=ci&sort=created"
    );
}

async fn a_bad_page_number_gets_a_page_not_a_bare_error(app: TestApp) {
    let admin = app.setup_admin().await;
    for path in [
        "/developer/access-tokens?page=abc",
        "/admin/access-tokens?page=-1x",
        "/admin/members?page=%FF",
        "/admin/members?page=9223372036854775808",
        "/admin/audit?page=1e9",
        "/admin/access-tokens?status=lost",
    ] {
        let response = admin.get(path).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{path}: {status}"
        );
        assert!(
            html.contains("<!doctype html>"),
            "{path} is a styled page: {html}"
        );
        assert!(
            !html.contains("deserialize"),
            "{path} says nothing of its parser"
        );
    }
}

/// Years the databases cannot compare (PostgreSQL's timestamps start in 4713 BC) are refused
/// with the other unreadable dates, never a 500 or a cut-off export.
async fn audit_dates_beyond_the_calendar_are_field_errors(app: TestApp) {
    let admin = app.setup_admin().await;
    for query in [
        "from=-4714-01-01",
        "to=-9999-01-01",
        "from=0000-01-01",
        "to=+10000-01-01",
    ] {
        let page = admin.get(&format!("/admin/audit?{query}")).await;
        assert_eq!(page.status(), StatusCode::OK, "{query}");
        assert!(page
            .text()
            .await
            .unwrap()
            .contains("Enter the date as YYYY-MM-DD."));
        let export = admin.get(&format!("/admin/audit.csv?{query}")).await;
        assert_eq!(export.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

async fn a_bulk_revoke_says_in_words_what_it_matches(app: TestApp) {
    let admin = app.setup_admin().await;
    admin.create_token("ci", "30", &["tag:read"]).await;
    let page = admin
        .page("/admin/access-tokens/bulk-revoke?status=active&unused=90&scope=tag:read&name=ci")
        .await;
    for words in [
        "active",
        "not used for 90 days",
        "holding tag:read",
        "name matching “ci”",
    ] {
        assert!(
            page.contains(&format!("<li>{words}</li>")),
            "{words}: {page}"
        );
    }
    let everything = admin.page("/admin/access-tokens/bulk-revoke").await;
    assert!(everything.contains("No filter is set: this revokes every unrevoked token"));
}
