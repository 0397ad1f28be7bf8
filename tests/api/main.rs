//! Integration tests: the real server over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod access_tokens;
mod account;
mod address_allowlist;
mod admin;
mod application_attacks;
mod applications;
mod audit_trail;
mod auth_cache;
mod auto_revoke;
mod cli;
mod exports;
mod foundation;
mod gateway_nginx;
mod held_requests;
mod hostile_input;
mod identities;
// The OpenID Connect provider the sign-in tests run.
mod identity_provider;
mod invariants;
mod last_used;
mod leak_report;
mod mail;
mod member_links;
mod metrics;
mod nginx;
mod one_time_showing;
mod openapi;
mod pages;
mod process;
mod proxies;
mod rotation_overlap;
mod route_walk;
mod scim;
// Shared with tests/faults; this binary uses only part of it.
#[allow(dead_code)]
mod server;
mod sign_in;
mod sign_in_limits;
mod smtp;
mod sso;
mod token_auth;
mod token_rotation;
mod token_rules;
mod upgrade;
mod usage;
mod usage_attacks;
