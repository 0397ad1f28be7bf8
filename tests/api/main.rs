//! Integration tests: the real server over HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod cli;
mod foundation;
mod sign_in;
