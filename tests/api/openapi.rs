//! The OpenAPI document is valid OpenAPI: Python's `openapi-spec-validator` reads it as a
//! client generator would. `.ci/run` installs the validator and names it in
//! `TOKENDESK_OPENAPI_VALIDATOR`; elsewhere it is looked for on PATH.

use std::process::Command;

use crate::helpers::{Backend, TestApp};

async fn the_openapi_document(app: &TestApp) -> String {
    let url = format!("{}/api/v1/openapi.json", app.address);
    let response = app.api().client.get(url).send().await.unwrap();
    assert!(response.status().is_success());
    response.text().await.unwrap()
}

/// The validator to run; None (with a note) only outside CI, where CI must have one.
fn openapi_validator() -> Option<String> {
    if let Ok(path) = std::env::var("TOKENDESK_OPENAPI_VALIDATOR") {
        return Some(path);
    }
    let on_path = "openapi-spec-validator";
    if Command::new(on_path).arg("--version").output().is_ok() {
        return Some(on_path.to_owned());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must validate the OpenAPI document: install openapi-spec-validator (pip), or set \
         TOKENDESK_OPENAPI_VALIDATOR to it (.ci/run does)"
    );
    eprintln!("openapi-spec-validator not found: the OpenAPI document was not validated");
    None
}

#[tokio::test]
async fn the_openapi_document_passes_a_real_validator() {
    let Some(validator) = openapi_validator() else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(file.path(), the_openapi_document(&app).await).unwrap();
    let output = Command::new(&validator)
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {validator}: {e}"));
    assert!(
        output.status.success(),
        "{validator} refused the OpenAPI document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("openapi-spec-validator: the document is valid");
}

/// What the validator caught once, checked without it too: a parameter `in: path` is one of
/// its path's `{placeholders}`, and every other one is in the query (or a header).
#[tokio::test]
async fn only_placeholders_of_the_path_are_path_parameters() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc: serde_json::Value = serde_json::from_str(&the_openapi_document(&app).await).unwrap();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                let placeholder = path.contains(&format!("{{{name}}}"));
                let place = parameter["in"].as_str().unwrap();
                assert_eq!(
                    place == "path",
                    placeholder,
                    "{method} {path}: {name} is in {place}"
                );
            }
        }
    }
}

/// What the validator caught once, checked without it too: every operation has its own id
/// (a client generator names its methods by them).
#[tokio::test]
async fn every_operation_has_its_own_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc: serde_json::Value = serde_json::from_str(&the_openapi_document(&app).await).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            let here = format!("{method} {path}");
            if let Some(before) = seen.insert(id.to_owned(), here.clone()) {
                panic!("{here} and {before} share the operation id {id:?}");
            }
        }
    }
}
