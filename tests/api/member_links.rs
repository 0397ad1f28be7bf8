//! An admin gives a member who forgot their password a new set-password link; the members
//! list tells who has never set one.

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{location, user_and_browser, Browser, TestApp, USER_PASSWORD};

backend_tests!(
    an_admin_issued_link_works_once_and_replaces_the_earlier_one,
    the_members_list_marks_who_has_not_set_a_password,
    a_deactivated_member_gets_no_link,
    a_link_does_not_come_back_with_a_reactivation,
);

const NEW_PASSWORD: &str = "compiler-pioneer-1952";

/// Asks for a new link for the member, confirms, and takes the link shown.
async fn issue_link(admin: &Browser, member_id: i64) -> String {
    let path = format!("/admin/members/{member_id}/password-link");
    let response = admin.submit_form(&path, &path, &[]).await;
    assert_eq!(location(&response), "/admin/members/link");
    admin.set_password_link_shown().await
}

async fn an_admin_issued_link_works_once_and_replaces_the_earlier_one(app: TestApp) {
    let admin = app.setup_admin().await;
    let (grace, graces_browser) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let earlier = issue_link(&admin, grace.id).await;
    let link = issue_link(&admin, grace.id).await;
    assert_eq!(
        app.browser().get(&earlier).await.status(),
        StatusCode::NOT_FOUND
    );
    let still_old = graces_browser.get("/developer/access-tokens").await;
    assert_eq!(
        still_old.status(),
        StatusCode::OK,
        "nothing changes until it is used"
    );

    let response = app
        .browser()
        .set_password_by_link(&link, NEW_PASSWORD)
        .await;
    assert_eq!(location(&response), "/sign-in");
    let signed_out = graces_browser.get("/developer/access-tokens").await;
    assert!(location(&signed_out).starts_with("/sign-in"));
    let with_old = app
        .browser()
        .sign_in("grace@example.com", USER_PASSWORD)
        .await;
    assert_eq!(with_old.status(), StatusCode::UNAUTHORIZED);
    let with_new = app
        .browser()
        .sign_in("grace@example.com", NEW_PASSWORD)
        .await;
    assert_eq!(with_new.status(), StatusCode::SEE_OTHER);
    let used_again = app.browser().get(&link).await;
    assert_eq!(used_again.status(), StatusCode::NOT_FOUND, "it works once");

    let links = app.audit_events("password_link.created").await;
    assert_eq!(links.len(), 2);
    assert_eq!(links[1].details, "replaces 1 unused link(s)");
    assert_eq!(app.audit_events("password.set").await.len(), 1);
}

/// The members list's row of the member with this email.
fn row_of(members_page: &str, email: &str) -> String {
    let cell = format!("title=\"{email}\">{email}</span>");
    members_page
        .split("<tr>")
        .find(|row| row.contains(&cell))
        .expect("the member is listed")
        .to_owned()
}

async fn the_members_list_marks_who_has_not_set_a_password(app: TestApp) {
    let admin = app.setup_admin().await;
    admin.invite_linus().await;
    let link = admin.set_password_link_shown().await;
    let members = admin.page("/admin/members").await;
    assert!(row_of(&members, "linus@example.com").contains("Invited: password not set"));
    assert!(!row_of(&members, "ada@example.com").contains("Invited"));

    let response = app
        .browser()
        .set_password_by_link(&link, NEW_PASSWORD)
        .await;
    assert_eq!(location(&response), "/sign-in");
    let members = admin.page("/admin/members").await;
    assert!(!row_of(&members, "linus@example.com").contains("Invited"));
}

async fn a_deactivated_member_gets_no_link(app: TestApp) {
    let admin = app.setup_admin().await;
    let (grace, _) = user_and_browser(&app, "grace@example.com", Role::User).await;
    app.set_member(grace.id, Role::User, false).await;
    let path = format!("/admin/members/{}/password-link", grace.id);
    let response = admin.submit_form(&path, &path, &[]).await;
    assert_eq!(location(&response), "/admin/members");
    let notice = admin.page("/admin/members").await;
    assert!(notice.contains("grace is deactivated. Reactivate them first."));
    assert!(app.audit_events("password_link.created").await.is_empty());
}

/// An admin who deactivates someone because their link leaked must not revive the link by
/// reactivating them.
async fn a_link_does_not_come_back_with_a_reactivation(app: TestApp) {
    let admin = app.setup_admin().await;
    let (grace, _) = user_and_browser(&app, "grace@example.com", Role::User).await;
    let link = issue_link(&admin, grace.id).await;
    for change in ["deactivate", "reactivate"] {
        let path = format!("/admin/members/{}/{change}", grace.id);
        admin.submit_form(&path, &path, &[]).await;
    }
    let members = admin.page("/admin/members").await;
    assert!(row_of(&members, "grace@example.com").contains("Active"));
    assert_eq!(
        app.browser().get(&link).await.status(),
        StatusCode::NOT_FOUND
    );
}
