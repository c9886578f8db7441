//! The committed CRD (`crds/zimroom.yaml`) and its CEL rules on the API server, written to as `kubectl` writes:
//! strict field validation on every request, and the server's warnings (the `Warning` headers kubectl prints) read
//! from every reply, so each accepted write is also checked to draw no warning.
//!
//! On a current Kubernetes:
//!   - server-side apply of `crds/zimroom.yaml` draws no warning, and a control copy with `format: uint32` draws
//!     `unrecognized format "uint32"` (so the test can see warnings at all); the CRD is established;
//!   - roomName is limited in bytes: 40 CJK characters (120 bytes) are refused on create, 21 (63 bytes) accepted;
//!   - before any room exists (no status.applied, no pending creation) destroyDelayTime and roomName can be
//!     corrected;
//!   - once status.applied exists (or a creation is pending), changing destroyDelayTime, roomName or roomId, or
//!     adding a roomName, is refused with the rule's message, while removing roomName and other edits pass.
//!
//! On Kubernetes 1.20 (`ZIM_KUBE_VERSION=floor`), which has no CEL, server-side apply of the CRD is refused naming
//! `x-kubernetes-validations` (as the README says), and the writes the rules refuse elsewhere are admitted: there
//! the operator refuses them (`immutable_edit_is_refused_without_a_call` and `invalid_spec_costs_no_zim_call` in
//! main.rs).

use std::time::Duration;

use http::{Method, header};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::harness::{World, client, ensure_crd, eventually, on_floor};

// Room IDs here start with `cel-`: other tests select rooms by spec.roomId across all namespaces
// (`field_selectors_find_the_declaring_object`).
const BYTES: &str = "roomName must be at most 64 bytes of UTF-8";
const NAME_FIXED: &str = "spec.roomName cannot be set or changed once the room exists";
const DELAY_FIXED: &str = "spec.destroyDelayTime cannot change once the room exists";
const ID_FIXED: &str = "spec.roomId cannot change once the room exists";

/// Every write names this field manager and asks for strict field validation (an unknown field is an error, not
/// a warning), as kubectl does by default.
const PARAMS: &str = "fieldManager=e2e-cel&fieldValidation=Strict";

/// The API server's answer: the HTTP status, the message of a refusal (a Status) and the text of each `Warning`
/// header.
struct Reply {
    code: u16,
    message: String,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}, message {:?}, warnings {:?}", self.code, self.message, self.warnings)
    }
}

impl Reply {
    fn message(&self) -> &str {
        &self.message
    }

    /// Accepted, without a warning.
    #[track_caller]
    fn assert_accepted(&self, what: &str) {
        assert!(
            (200..300).contains(&self.code) && self.warnings.is_empty(),
            "{what}: expected to be accepted without a warning, got {self:?}"
        );
    }

    /// Refused as invalid (422), with `message` in the reason.
    #[track_caller]
    fn assert_refused(&self, message: &str, what: &str) {
        assert!(
            self.code == 422 && self.message().contains(message),
            "{what}: expected a refusal with {message:?}, got {self:?}"
        );
    }

    /// Refused by a CEL rule with `message` on a current Kubernetes; admitted on 1.20, which has no CEL.
    #[track_caller]
    fn assert_rule(&self, message: &str, what: &str) {
        if on_floor() { self.assert_accepted(what) } else { self.assert_refused(message, what) }
    }
}

/// Sends one request through the client's connection (the kubeconfig's server and credentials) and keeps what
/// kube's typed API would drop: the warnings.
async fn send(client: &Client, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(kube::client::Body::from(body))
        .unwrap();
    let response = client.send(request).await.unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
    let code = response.status().as_u16();
    let warnings =
        response.headers().get_all(header::WARNING).iter().map(|v| warning_text(v.as_bytes())).collect();
    let bytes = response.into_body().collect_bytes().await.expect("the reply's body");
    let message = match serde_json::from_slice::<Value>(&bytes) {
        Ok(body) => body["message"].as_str().unwrap_or_default().to_owned(),
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    };
    Reply { code, message, warnings }
}

/// The text of a warning header, `299 - "text"` (RFC 7234; quotes inside are escaped), as kubectl prints it.
fn warning_text(header: &[u8]) -> String {
    let header = String::from_utf8_lossy(header);
    let quoted = match (header.find('"'), header.rfind('"')) {
        (Some(a), Some(b)) if b > a => &header[a + 1..b],
        _ => &header[..],
    };
    quoted.replace("\\\"", "\"").replace("\\\\", "\\")
}

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// `kubectl apply --server-side` of a CRD given as YAML (or JSON, which is YAML).
async fn apply_crd(client: &Client, name: &str, yaml: Vec<u8>) -> Reply {
    let path = format!("{CRDS}/{name}?{PARAMS}");
    send(client, Method::PATCH, &path, "application/apply-patch+yaml", yaml).await
}

/// Deletes the CRD `name` if it exists and waits until it is gone.
async fn remove_crd(client: &Client, name: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.delete(name, &Default::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => panic!("deleting the CRD {name}: {e}"),
    }
    eventually(&format!("the CRD {name} to be gone"), Duration::from_secs(30), || async {
        matches!(crds.get_opt(name).await, Ok(None)).then_some(())
    })
    .await;
}

/// `crds/zimroom.yaml` under another name (kind `kind`, in the same group), as JSON.
fn renamed_crd(kind: &str, plural: &str) -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/zimroom.yaml")).unwrap();
    let mut crd: Value = serde_saphyr::from_str(&text).expect("crds/zimroom.yaml parses");
    crd["metadata"]["name"] = format!("{plural}.zim.zego.im").into();
    crd["spec"]["names"] = json!({"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")});
    crd
}

/// Replaces every `format: int64` by `format: uint32` (a format the API server does not know); returns how many.
fn int64_to_uint32(v: &mut Value) -> usize {
    match v {
        Value::Object(o) => {
            let mut n = 0;
            if o.get("format") == Some(&json!("int64")) {
                o.insert("format".into(), json!("uint32"));
                n += 1;
            }
            n + o.values_mut().map(int64_to_uint32).sum::<usize>()
        }
        Value::Array(a) => a.iter_mut().map(int64_to_uint32).sum(),
        _ => 0,
    }
}

/// Server-side apply of `crds/zimroom.yaml` draws no warning on a current Kubernetes, and the same CRD with
/// `format: uint32` does (`unrecognized format "uint32"`): the control shows that warnings would be seen. The CRD
/// is then established. On 1.20 that apply is refused, naming `x-kubernetes-validations`.
#[tokio::test]
async fn crd_applies_without_a_warning_where_a_uint32_control_draws_one() {
    let client = client().await;
    let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/zimroom.yaml")).unwrap();
    let applied = apply_crd(&client, "zimrooms.zim.zego.im", file).await;
    if on_floor() {
        assert!(
            applied.code >= 400 && applied.message().contains("x-kubernetes-validations"),
            "1.20 refuses the CRD's CEL rules under server-side apply: {applied:?}"
        );
        ensure_crd(&client).await; // the harness's copy without them
        return;
    }
    applied.assert_accepted("kubectl apply --server-side -f crds/zimroom.yaml");

    // A copy under another name is a create (the CRD above may already exist): no warning either. The control is
    // the same copy with format uint32. Both are removed first, in case an earlier run on this cluster left them.
    let copy = renamed_crd("ZimRoomCopy", "zimroomcopies");
    remove_crd(&client, "zimroomcopies.zim.zego.im").await;
    let created = apply_crd(&client, "zimroomcopies.zim.zego.im", serde_json::to_vec(&copy).unwrap()).await;
    created.assert_accepted("creating a renamed copy of crds/zimroom.yaml server-side");
    remove_crd(&client, "zimroomcopies.zim.zego.im").await;

    let mut control = renamed_crd("ZimRoomControl", "zimroomcontrols");
    assert!(int64_to_uint32(&mut control) >= 3, "the control changes the CRD's int64 formats");
    remove_crd(&client, "zimroomcontrols.zim.zego.im").await;
    let warned =
        apply_crd(&client, "zimroomcontrols.zim.zego.im", serde_json::to_vec(&control).unwrap()).await;
    assert!(
        (200..300).contains(&warned.code)
            && warned.warnings.iter().any(|w| w.contains("unrecognized format \"uint32\"")),
        "the control with format uint32 draws 'unrecognized format' warnings: {warned:?}"
    );
    remove_crd(&client, "zimroomcontrols.zim.zego.im").await;

    ensure_crd(&client).await; // waits until zimrooms.zim.zego.im is established
}

/// The requests `kubectl create -f`, `kubectl patch --type=merge` and `kubectl patch --subresource=status` send,
/// for ZimRooms in one world's namespace.
struct Rooms<'a>(&'a World);

impl Rooms<'_> {
    fn path(&self, tail: &str) -> String {
        format!("/apis/zim.zego.im/v1alpha1/namespaces/{}/zimrooms{tail}?{PARAMS}", self.0.ns)
    }

    async fn create(&self, name: &str, spec: Value) -> Reply {
        let room = json!({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom",
                          "metadata": {"name": name}, "spec": spec});
        let body = serde_json::to_vec(&room).unwrap();
        send(&self.0.client, Method::POST, &self.path(""), "application/json", body).await
    }

    async fn patch(&self, name: &str, patch: Value) -> Reply {
        let body = serde_json::to_vec(&patch).unwrap();
        let path = self.path(&format!("/{name}"));
        send(&self.0.client, Method::PATCH, &path, "application/merge-patch+json", body).await
    }

    async fn set_status(&self, name: &str, status: Value) -> Reply {
        let body = serde_json::to_vec(&json!({ "status": status })).unwrap();
        let path = self.path(&format!("/{name}/status"));
        send(&self.0.client, Method::PATCH, &path, "application/merge-patch+json", body).await
    }
}

/// roomName is limited in bytes, not characters: 40 CJK characters (120 bytes, within the schema's 64 characters)
/// are refused on create with the rule's message, 21 (63 bytes) are accepted.
#[tokio::test]
async fn room_name_is_limited_in_bytes() {
    let w = World::new("e2e-cel-bytes").await;
    let rooms = Rooms(&w);
    let long = rooms.create("long-name", json!({"roomName": "房".repeat(40)})).await;
    long.assert_rule(BYTES, "create: roomName of 40 CJK characters (120 bytes)");
    let fits = rooms.create("cjk-name", json!({"roomName": "房".repeat(21)})).await;
    fits.assert_accepted("create: roomName of 21 CJK characters (63 bytes)");
}

/// Before any room exists (no status.applied, no pending creation), destroyDelayTime and roomName can be
/// corrected: changed, added, changed again.
#[tokio::test]
async fn before_the_room_exists_its_fields_can_be_corrected() {
    let w = World::new("e2e-cel-before").await;
    let rooms = Rooms(&w);
    rooms
        .create("lobby", json!({"roomId": "cel-lobby", "destroyDelayTime": 100}))
        .await
        .assert_accepted("create");
    let r = rooms.patch("lobby", json!({"spec": {"destroyDelayTime": 200}})).await;
    r.assert_accepted("correcting destroyDelayTime");
    let r = rooms.patch("lobby", json!({"spec": {"roomName": "Lobby"}})).await;
    r.assert_accepted("adding roomName");
    let r = rooms.patch("lobby", json!({"spec": {"roomName": "The lobby"}})).await;
    r.assert_accepted("changing roomName");
}

/// Once status.applied records the room, changing destroyDelayTime, roomName or roomId is refused with the rule's
/// message; removing roomName and an unrelated edit (a label, destroyDelayTime left as it is) still pass.
#[tokio::test]
async fn once_the_room_exists_its_fixed_fields_are_refused() {
    let w = World::new("e2e-cel-applied").await;
    let rooms = Rooms(&w);
    let spec = json!({"roomId": "cel-lobby", "roomName": "The lobby", "destroyDelayTime": 200});
    rooms.create("lobby", spec).await.assert_accepted("create");
    let applied =
        json!({"applied": {"roomId": "cel-lobby", "roomName": "The lobby", "destroyDelayTime": 200}});
    rooms.set_status("lobby", applied).await.assert_accepted("status.applied through the status subresource");

    let r = rooms.patch("lobby", json!({"spec": {"destroyDelayTime": 300}})).await;
    r.assert_rule(DELAY_FIXED, "changing destroyDelayTime");
    let r = rooms.patch("lobby", json!({"spec": {"roomName": "Another name"}})).await;
    r.assert_rule(NAME_FIXED, "changing roomName");
    let r = rooms.patch("lobby", json!({"spec": {"roomId": "cel-lobby-2"}})).await;
    r.assert_rule(ID_FIXED, "changing roomId");
    let r = rooms.patch("lobby", json!({"spec": {"roomName": null}})).await;
    r.assert_accepted("removing roomName");
    let unrelated = json!({"metadata": {"labels": {"team": "chat"}}, "spec": {"destroyDelayTime": 200}});
    rooms.patch("lobby", unrelated).await.assert_accepted("an unrelated edit");
}

/// Once status.applied records a room created without a name, adding a roomName is refused with the rule's
/// message (ZIM cannot rename a room).
#[tokio::test]
async fn once_the_room_exists_a_room_name_cannot_be_added() {
    let w = World::new("e2e-cel-add-name").await;
    let rooms = Rooms(&w);
    rooms.create("hall", json!({"destroyDelayTime": 60})).await.assert_accepted("create without roomName");
    let applied = json!({"applied": {"roomId": "cel-hall", "destroyDelayTime": 60}});
    rooms.set_status("hall", applied).await.assert_accepted("status.applied");
    let r = rooms.patch("hall", json!({"spec": {"roomName": "Hall"}})).await;
    r.assert_rule(NAME_FIXED, "adding roomName");
}

/// A pending creation (status.pendingCreation: the outcome of a CreateRoom is unknown) counts as an existing room:
/// changing destroyDelayTime is refused.
#[tokio::test]
async fn a_pending_creation_counts_as_an_existing_room() {
    let w = World::new("e2e-cel-pending").await;
    let rooms = Rooms(&w);
    rooms.create("pending", json!({"destroyDelayTime": 60})).await.assert_accepted("create");
    let r = rooms.set_status("pending", json!({"pendingCreation": true})).await;
    r.assert_accepted("status.pendingCreation");
    let r = rooms.patch("pending", json!({"spec": {"destroyDelayTime": 90}})).await;
    r.assert_rule(DELAY_FIXED, "changing destroyDelayTime while the creation is pending");
}
