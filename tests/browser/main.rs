//! End-to-end journeys in real headless Chromium (Debian's chromium + chromium-driver),
//! against the real server, with axe-core run on every page.

// Shared with tests/api; this binary uses only part of it.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

#[path = "../api/nginx.rs"]
mod nginx;

// Shared with tests/api; the journey plays an honest provider only.
#[allow(dead_code)]
#[path = "../api/identity_provider.rs"]
mod identity_provider;

mod harness;
mod journeys;
mod widths;
