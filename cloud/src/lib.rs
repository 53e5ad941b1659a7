//! The ivcs cloud service: the device API the engine uploads to, storage
//! (SQLite + object store), plans, events, retention, and playback for apps.
//!
//! - [`config`]: settings from file, environment and flags.
//! - [`error`]: the one error type, mapped to HTTP statuses and `IV_ERR_*`;
//!   [`extract`]: path, query and JSON extractors that reject with it.
//! - [`ids`]: validation of client-chosen names.
//! - [`model`]: stored records and their rules.
//! - [`repo`]: every SQL statement (metadata).
//! - [`objects`]: segment and picture bytes.
//! - [`clock`]: "now", injectable for tests.
//! - [`auth`]: device request signatures, app tokens, playback URLs.
//! - [`feed`]: the change feed devices long-poll.
//! - [`metrics`]: Prometheus counters.
//! - [`app`]: shared state and operations (plans, events, deletion,
//!   retention).
//! - [`device_api`], [`app_api`]: the two HTTP APIs; [`hls`]: playlists;
//!   [`export`]: MP4 export of a range.
//! - [`releases`]: engine releases (publish, targeting, offers, tokens);
//!   [`release_api`]: their HTTP routes for operators and devices.
//! - [`server`]: router, background jobs, `serve`.
//! - [`time`]: RFC 3339 and civil dates.
//! - [`openapi`]: the OpenAPI document of both APIs, served at
//!   `/v1/openapi.json`.
//! - [`viewer`]: the web viewer's static files at `/` and `/viewer/...`.
pub mod app;
pub mod app_api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod device_api;
pub mod error;
pub mod export;
pub mod extract;
pub mod feed;
pub mod hls;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod objects;
pub mod openapi;
pub mod release_api;
pub mod releases;
pub mod repo;
pub mod server;
pub mod time;
pub mod viewer;

pub use error::{Error, ErrorKind, Result};
