//! A ZIM server-API simulator, written to ZEGO's documentation (docs/simulator.md says where it decides what that leaves open).
//!
//! It checks signatures exactly as documented (md5, ±10-minute window, 16-hex nonce, `SignatureVersion=2.0`),
//! reads GET parameters from the query and POST business parameters from a JSON body, implements UserRegister,
//! CreateRoom, DestroyRoom, ModifyRoomAttribute, QueryRoomAttribute, QueryRoomUserList, KickoutRoomUser and
//! SendRoomMessage with their documented codes, lets members enter and leave rooms (standing in for client SDKs), enforces per-(AppId, Action) QPS limits (strictest reading: never more than the limit in any one-second
//! window, counting accepted calls) and a room quota, destroys empty rooms after their `DestroyDelayTime` on a
//! room clock that tests can advance, injects faults, and sends ZEGO's room server callbacks to a configured URL.
//!
//! Two clocks: signatures are checked against the wall clock, room expiry uses the room clock (wall clock plus
//! whatever was advanced), so advancing time never invalidates a client's signatures.
//!
//! Besides the API at `/`, an admin API for tests lives under `/_sim/` (see `admin.rs`); in-process tests use
//! [`Simulator`]'s methods directly. Every request is logged (action, AppId, RoomId, code) without secrets.
//!
//! Modules, one concern each:
//! - `gateway`: public parameters and the signature, parameter placement, the QPS window;
//! - `rooms`, `actions` and `attributes`: the room model (members, recorded room messages), and the eight
//!   actions with their codes;
//! - `faults`: [`Fault`], [`FaultPlan`] and what each fault answers;
//! - `log`: the request log and the in-memory record of received signatures;
//! - [`callbacks`]: the ZEGO server callbacks it sends (`room_create`, `room_destroy`, `room_enter`,
//!   `room_exit`), signed and retried;
//! - `memory`: [`InMemoryZim`], the ZIM operations on this state without HTTP;
//! - `state`: the parts together, and the path of one request through them;
//! - [`server`] and `admin`: the HTTP surface.

mod actions;
mod admin;
mod attributes;
pub mod callbacks;
mod failure;
mod faults;
mod gateway;
mod log;
mod memory;
mod rooms;
pub mod server;
mod state;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

pub use callbacks::{CallbackConfig, CallbackDelivery, CallbackReport, CallbackSecret, CallbackTarget};
pub use faults::{Fault, FaultPlan, PRESETS as FAULT_PRESETS};
pub use gateway::SIGNATURE_WINDOW_SECS;
pub use log::LogEntry;
pub use memory::InMemoryZim;
pub use rooms::{RoomMessage, RoomView};

use crate::zim::sign::ServerSecret;

/// The AppId of the built-in demo credentials (`apply --simulate`).
pub const DEMO_APP_ID: u32 = 1_000_001;
/// The server secret of the built-in demo credentials; it only works against the simulator.
pub const DEMO_SERVER_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// The simulator's configuration.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Applications: AppId and server secret.
    pub apps: Vec<(u32, ServerSecret)>,
    /// Calls per second per (AppId, Action); 0 disables the limit.
    pub qps: u32,
    /// Live rooms allowed per app.
    pub room_quota: usize,
    /// Faults to inject.
    pub faults: FaultPlan,
    /// Server callbacks: target (none by default), retry schedule, attempt timeout, queue bound.
    pub callbacks: CallbackConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            qps: 20,
            room_quota: 100_000,
            faults: FaultPlan::default(),
            callbacks: CallbackConfig::default(),
        }
    }
}

/// What every handle on one simulator shares: the state, and the callback worker's wake-up.
pub(crate) struct Shared {
    state: Mutex<state::SimState>,
    wake: Arc<Notify>,
    worker_started: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::SimState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that matters to tests.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The callback worker holds only a weak reference; wake it so it sees that the simulator is gone.
        self.wake.notify_one();
    }
}

/// A handle on a simulator's state; cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    /// A simulator for `config`. With a callback target, call it inside a tokio runtime (or serve it), so the
    /// callback worker can start.
    pub fn new(config: SimConfig) -> Self {
        let sim = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state::SimState::new(config)),
                wake: Arc::new(Notify::new()),
                worker_started: AtomicBool::new(false),
            }),
        };
        sim.start_callbacks_if_targeted();
        sim
    }

    /// A simulator that knows the demo app and has default limits.
    pub fn demo() -> Self {
        Self::new(SimConfig {
            apps: vec![(DEMO_APP_ID, ServerSecret::new(DEMO_SERVER_SECRET))],
            ..Default::default()
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, state::SimState> {
        self.shared.lock()
    }

    /// Runs `f` on the state, then deals with what the rooms did (callbacks), and wakes the callback worker
    /// when events are waiting. Every change of rooms goes through here.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut state::SimState) -> T) -> T {
        let (out, queued) = {
            let mut s = self.lock();
            let out = f(&mut s);
            s.settle();
            (out, s.callbacks.has_queued())
        };
        if queued {
            self.wake_callbacks();
        }
        out
    }

    /// Starts the callback worker if needed (inside a tokio runtime), and wakes it.
    fn wake_callbacks(&self) {
        if !self.shared.worker_started.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(callbacks::worker(Arc::downgrade(&self.shared), self.shared.wake.clone()));
                }
                Err(_) => self.shared.worker_started.store(false, Ordering::SeqCst),
            }
        }
        self.shared.wake.notify_one();
    }

    fn start_callbacks_if_targeted(&self) {
        if self.lock().callbacks.target().is_some() {
            self.wake_callbacks();
        }
    }

    /// The ZIM operations ([`crate::zim::ZimApi`]) on this simulator's state, without HTTP: see [`InMemoryZim`].
    pub fn in_memory(&self) -> InMemoryZim {
        InMemoryZim::new(self.clone())
    }

    /// Advances the room clock by `seconds`. With a callback target, rooms that expire are destroyed (and
    /// announced) at once.
    pub fn advance_clock(&self, seconds: f64) {
        self.with(|s| {
            s.rooms.advance_clock(seconds);
            if s.callbacks.target().is_some() {
                s.rooms.sweep();
            }
        });
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.lock().set_faults(plan);
    }

    /// Replaces `app_id`'s server secret (a new secret generated in the console revokes the old one).
    pub fn set_app_secret(&self, app_id: u32, secret: &str) {
        self.with(|s| s.gateway.set_secret(app_id, crate::zim::ServerSecret::new(secret)));
    }

    /// Sets the QPS limit per (AppId, Action) and/or the room quota.
    pub fn set_limits(&self, qps: Option<u32>, room_quota: Option<usize>) {
        self.lock().set_limits(qps, room_quota);
    }

    /// Sets (or with `None` clears) where server callbacks go. Rooms that expired before are destroyed without
    /// a callback; later events go to the new target. Call it inside a tokio runtime.
    pub fn set_callback_target(&self, target: Option<CallbackTarget>) {
        self.with(|s| {
            s.rooms.sweep();
            s.settle();
            s.callbacks.set_target(target);
        });
        self.start_callbacks_if_targeted();
    }

    /// Sets the waits before each callback retry (ZEGO's: 2, 4, 8, 16, 32 s), for events from now on.
    pub fn set_callback_retry(&self, retry_after: Vec<Duration>) {
        self.lock().callbacks.set_retry_after(retry_after);
    }

    /// The callback delivery attempts after `since`, and how many events are pending or were dropped.
    pub fn callback_report(&self, since: u64) -> CallbackReport {
        self.lock().callbacks.report(since)
    }

    /// The request log after entry `since`.
    pub fn log_since(&self, since: u64) -> Vec<LogEntry> {
        self.lock().log.since(since)
    }

    /// The whole request log.
    pub fn log(&self) -> Vec<LogEntry> {
        self.log_since(0)
    }

    /// Every request signature received (in memory only), for tests that prove signatures never leak.
    pub fn signatures(&self) -> Vec<String> {
        self.lock().log.signatures()
    }

    /// Creates a room as if another party had created it (no callback).
    pub fn seed_room(
        &self,
        app_id: u32,
        room_id: &str,
        name: &str,
        delay: u32,
        attributes: &[(String, String)],
    ) {
        self.with(|s| s.rooms.seed_room(app_id, room_id, name, delay, attributes));
    }

    /// Destroys a room directly, as another party whose callback is lost would; returns whether it existed.
    pub fn remove_room(&self, app_id: u32, room_id: &str) -> bool {
        self.with(|s| s.rooms.remove_room(app_id, room_id))
    }

    /// Forgets that `user` is registered in `app_id` (as if ZEGO had lost the registration); returns whether it was.
    pub fn unregister_user(&self, app_id: u32, user: &str) -> bool {
        self.with(|s| s.rooms.apps.get_mut(&app_id).is_some_and(|a| a.users.remove(user)))
    }

    /// Sets the users in a room, without callbacks (as if their `room_enter`/`room_exit` were lost); returns
    /// whether the room is live.
    pub fn set_room_users(&self, app_id: u32, room_id: &str, users: BTreeSet<String>) -> bool {
        self.with(|s| s.rooms.set_room_users(app_id, room_id, users))
    }

    /// Users enter a live room, as a client SDK's `enterRoom` would: each one not already in is added (last in
    /// entry order) and announced by a `room_enter` callback. Returns the users who entered, or `None` when
    /// there is no such room. An empty room in its delay is live again once someone enters.
    pub fn enter_room(&self, app_id: u32, room_id: &str, users: &[String]) -> Option<Vec<String>> {
        self.with(|s| s.rooms.enter_room(app_id, room_id, users))
    }

    /// Users leave a live room of their own accord: each one in the room is removed and announced by a
    /// `room_exit` callback (`Quit`). The room's DestroyDelayTime starts when the last one leaves. Returns the
    /// users who left, or `None` when there is no such room.
    pub fn leave_room(&self, app_id: u32, room_id: &str, users: &[String]) -> Option<Vec<String>> {
        self.with(|s| s.rooms.leave_room(app_id, room_id, users))
    }

    /// The messages SendRoomMessage delivered to a room, oldest first (kept after the room is gone; at most the
    /// last 1000 per room).
    pub fn room_messages(&self, app_id: u32, room_id: &str) -> Vec<RoomMessage> {
        self.lock().rooms.room_messages(app_id, room_id)
    }

    /// A live room.
    pub fn room(&self, app_id: u32, room_id: &str) -> Option<RoomView> {
        self.lock().rooms.room(app_id, room_id)
    }

    /// All live rooms of an app.
    pub fn rooms(&self, app_id: u32) -> Vec<RoomView> {
        self.lock().rooms.rooms(app_id)
    }

    /// Serves the API and the admin API on `addr` until `shutdown` completes. Returns the bound address.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = server::router(self.clone());
        self.start_callbacks_if_targeted();
        let handle =
            tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
        Ok((local, handle))
    }

    /// Starts serving on an ephemeral 127.0.0.1 port, for tests; stops when the returned guard is dropped.
    pub async fn start_local(&self) -> std::io::Result<RunningSim> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, handle) = self
            .serve(SocketAddr::from(([127, 0, 0, 1], 0)), async move {
                let _ = rx.await;
            })
            .await?;
        Ok(RunningSim { addr, sim: self.clone(), _stop: tx, _handle: handle })
    }
}

/// A simulator serving on a local port; dropping it stops the server.
pub struct RunningSim {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub sim: Simulator,
    _stop: tokio::sync::oneshot::Sender<()>,
    _handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningSim {
    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}
