//! tokendesk: a self-hosted portal for personal access tokens, and the service that checks them.

pub mod accounts;
pub mod api;
pub mod applications;
pub mod audit;
pub mod background;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod notifications;
pub mod policy;
#[cfg(test)]
mod properties;
pub mod sessions;
pub mod startup;
pub mod telemetry;
pub mod tokens;
pub mod users;
pub mod web;
