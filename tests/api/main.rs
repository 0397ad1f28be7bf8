//! Integration tests: the real server over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod access_tokens;
mod cli;
mod foundation;
mod sign_in;
