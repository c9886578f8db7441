//! The tiers that need no server of their own, in one binary: the ZIM client and the simulator over real HTTP,
//! room occupancy (members, kicks, room messages), the reconcile core against the simulator, the callback
//! receiver, the binary's commands, the CRD, the README's tables, input hardening and fuzzing, the kstatus port,
//! the monitoring files. (The tiers with a kube-apiserver
//! are `e2e`, `outage` and `uninstall`, behind the `e2e` feature.) Helpers: `tests/support`.

#[path = "../support/mod.rs"]
mod support;

mod callback;
mod cli;
mod crd;
mod docs;
mod fuzz;
mod hardening;
mod import_plan;
mod input;
mod kstatus;
mod monitoring;
mod occupancy;
mod ownership;
mod reconcile;
mod shutdown;
mod sim;
mod wire_rate;
mod zim_client;
