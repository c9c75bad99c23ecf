//! Unary gRPC over containerd's unix socket: HTTP/2 with hyper (already in the tree), messages
//! framed as gRPC frames them (a 0 byte for "not compressed", the length as a big-endian u32, the
//! protobuf), the status in `grpc-status`/`grpc-message` (in the trailers, or in the headers of a
//! trailers-only answer). The shim asks containerd which image a container runs (`containerd`);
//! the CRI tests drive containerd's CRI plugin with it.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::path::Path;

/// A gRPC call that did not answer OK: the status code and message a kubelet would log.
#[derive(Debug)]
pub struct Status {
    pub code: u32,
    pub message: String,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gRPC status {}: {}", self.code, self.message)
    }
}

/// `method` is the full path, e.g. `/runtime.v1.RuntimeService/Version`; `metadata`: request
/// headers such as containerd's `containerd-namespace`.
pub async fn call<Req: prost::Message, Resp: prost::Message + Default>(
    socket: &Path,
    method: &str,
    metadata: &[(&str, &str)],
    request: &Req,
) -> Result<Resp, Status> {
    let transport = |e: &dyn std::fmt::Display| Status {
        code: 14, // UNAVAILABLE
        message: format!("{method}: {e}"),
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| transport(&e))?;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| transport(&e))?;
    tokio::spawn(conn);
    let payload = request.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(0);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let mut req = hyper::Request::post(format!("http://localhost{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in metadata {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(frame)))
        .map_err(|e| transport(&e))?;
    let resp = send.send_request(req).await.map_err(|e| transport(&e))?;
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.map_err(|e| transport(&e))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = collected.to_bytes();
    let field = |name: &str| {
        trailers
            .get(name)
            .or_else(|| parts.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let code: u32 = field("grpc-status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2); // UNKNOWN: no status at all
    if code != 0 {
        return Err(Status {
            code,
            message: percent_decode(&field("grpc-message").unwrap_or_default()),
        });
    }
    if data.len() < 5 {
        return Err(transport(&"no message in the answer"));
    }
    Resp::decode(&data[5..]).map_err(|e| transport(&e))
}

/// grpc-message is percent-encoded (space stays a space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
