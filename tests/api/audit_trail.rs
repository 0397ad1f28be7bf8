//! The audit trail records each change once, and only changes.

use reqwest::StatusCode;
use tokendesk::domain::Role;

use crate::backend_tests;
use crate::helpers::{csrf_token, TestApp};

backend_tests!(deactivating_a_deactivated_member_records_nothing_more);

async fn deactivating_a_deactivated_member_records_nothing_more(app: TestApp) {
    let admin = app.setup_admin().await;
    let kim = app
        .create_user("kim@example.com", "kims-password-1", Role::User)
        .await;
    let page = format!("/admin/members/{}/deactivate", kim.id);
    let csrf = csrf_token(&admin.page(&page).await);
    let deactivated_at = || async {
        let id = kim.id;
        app.db
            .run(move |conn| tokendesk::users::find(conn, id))
            .await
            .unwrap()
            .unwrap()
            .deactivated_at
    };
    let response = admin.post(&page, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let first = deactivated_at().await.expect("deactivated");
    let response = admin.post(&page, &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(admin
        .page("/admin/members")
        .await
        .contains("already is deactivated; nothing changed."));
    assert_eq!(
        deactivated_at().await,
        Some(first),
        "the time stays the first one"
    );
    assert_eq!(app.audit_events("member.deactivated").await.len(), 1);
}
