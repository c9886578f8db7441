//! The ZIM server-API client. It knows nothing of Kubernetes.
//!
//! - [`sign`]: the documented md5 signature, a pure function;
//! - [`types`]: actions, requests and responses with ZEGO's field names;
//! - [`codes`]: the return-code table and the class of each outcome;
//! - [`error`]: one error type separating ZIM answers from transport failures;
//! - [`api`]: the [`ZimApi`] trait, the operations the reconcile core uses (rooms, their members, kicking them
//!   out, room messages);
//! - [`dry_run`]: a decorator that sends the reads and records the writes (`plan`);
//! - [`limiter`]: even spacing per (AppId, Action), as a decorator around any [`ZimApi`];
//! - [`client`]: the HTTP transport tying them together;
//! - [`stack`]: [`ZimClient`], the HTTP transport behind the limiter (what the operator uses).

pub mod api;
pub mod client;
pub mod codes;
pub mod dry_run;
pub mod error;
pub mod limiter;
pub mod limits;
pub mod sign;
pub mod stack;
pub mod types;

pub use api::{CallObserver, ZimApi};
pub use client::{ClientConfig, Clock, DEFAULT_ENDPOINT, HttpClient, MAX_BODY_BYTES, SystemClock, TlsRoots};
pub use codes::{Class, Terminal, classify};
pub use error::ZimError;
pub use limiter::RateLimited;
pub use sign::{Credentials, ServerSecret};
pub use stack::ZimClient;
pub use types::{Action, RoomProbe};
