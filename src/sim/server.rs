//! The simulator's HTTP surface: the ZIM API at `/`, the admin API under `/_sim/` (see [`super::admin`]), and
//! how each [`Answer`] is written on the wire.

use std::future::ready;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::{StreamExt, stream};

use super::Simulator;
use super::faults::{Answer, Before, PAD_BYTE, status_text};
use super::gateway::{HttpRequest, query_value};
use super::state::logged_room_id;

/// The simulator's router.
pub fn router(sim: Simulator) -> Router {
    super::admin::routes(Router::new().route("/", any(api))).fallback(wrong_path).with_state(sim)
}

async fn api(
    State(sim): State<Simulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let action = query_value(&query, "Action").unwrap_or("").to_owned();
    let begun = {
        let mut s = sim.lock();
        if let Some(sig) = query_value(&query, "Signature") {
            s.log.remember_signature(sig);
        }
        s.begin(&action)
    };
    if begun.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(begun.latency_ms)).await;
    }
    let before = if begun.fault.is_some() {
        let app_id = query_value(&query, "AppId").and_then(|v| v.parse().ok()).unwrap_or(0);
        let room_id = logged_room_id(&query, &serde_json::from_slice(&body).unwrap_or_default());
        sim.lock().before_action(&begun, &action, app_id, &room_id)
    } else {
        Before::Proceed
    };
    match before {
        Before::Answer(answer) => return write(answer),
        Before::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Before::Proceed => {}
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let req = HttpRequest { query: &query, body: &body, is_post: method == Method::POST, content_type };
    let (response, _code) = sim.with(|s| s.handle_http(&req, &begun));
    let answer = begun.answer(response).await;
    write(answer)
}

/// Any other path: a plain-text 404, the same answer as [`Fault::HttpStatus`](super::Fault::HttpStatus) 404.
async fn wrong_path() -> Response {
    write(Answer::Status(404))
}

/// Padding chunks are slices of this, so a huge body costs no memory.
static PAD: [u8; 64 * 1024] = [PAD_BYTE; 64 * 1024];

/// Writes an answer on the wire.
fn write(answer: Answer) -> Response {
    match answer {
        Answer::Json(v) => axum::Json(v).into_response(),
        Answer::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let text = status_text(status.as_u16());
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Answer::Broken => {
            // Headers go out, then the body stream fails: the connection is cut mid-response.
            let stream = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by fault injection"))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap_or_default()
        }
        Answer::Garbled(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Answer::Padded { prefix, pad, suffix } => {
            // Chunked, without Content-Length: a client has to bound what it reads by itself.
            let padding = stream::unfold(pad, |left| async move {
                (left > 0).then(|| {
                    let n = left.min(PAD.len() as u64) as usize;
                    (Ok::<Bytes, std::io::Error>(Bytes::from_static(&PAD[..n])), left - n as u64)
                })
            });
            let body = stream::once(ready(Ok(Bytes::from(prefix))))
                .chain(padding)
                .chain(stream::once(ready(Ok(Bytes::from_static(suffix.as_bytes())))));
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(body))
                .unwrap_or_default()
        }
        Answer::Redirect { status, location } => Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT))
            .header(header::LOCATION, location)
            .body(Body::empty())
            .unwrap_or_default(),
    }
}
