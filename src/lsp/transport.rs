//! The bytes between the client and the LSP service. tower-lsp-server's
//! own reader ends the session at the first frame it cannot decode, so
//! the client's bytes come here first: [`Decoder`] frames them with the
//! base protocol's rules (header names in any case, `\r\n` or bare `\n`
//! line ends), answers what is not a valid JSON-RPC message with the error
//! the specification prescribes (or drops it when nothing can be matched
//! to it), finds the next frame after garbage, and passes only valid
//! messages on, re-framed. A few messages take a fast path that never
//! waits behind the service's queue of running handlers: `$/cancelRequest`
//! stops the request's inference at once, `nib/status` is answered here,
//! and `$/` requests, which the server does not offer, get MethodNotFound.
//!
//! Architecture invariant: no byte sequence from the client ends the
//! session or grows memory without bound: a frame holds at most
//! [`MAX_MESSAGE_BYTES`], a header block at most [`MAX_HEADER_BYTES`].

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The largest message body accepted; longer frames are skipped.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// The largest header block; a longer one is garbage.
pub const MAX_HEADER_BYTES: usize = 8 << 10;

/// JSON-RPC error codes (the specification's and LSP's).
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;

/// The params key under which an inline completion's own id reaches its
/// handler, so that [`FastPath::cancel`] can find its job (the handler's
/// params type, `lsp::completion::InlineRequest`, names it too); whatever a
/// client puts there is replaced.
pub const REQUEST_ID_KEY: &str = "nibRequestId";

/// One frame of client input.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A valid JSON-RPC message object: request, notification or response.
    Message(Value),
    /// Not a valid message. `reply` is the error to answer with, when the
    /// client can match one to it (its id) or the specification asks for
    /// one anyway (a parse error, id `null`).
    Rejected {
        reply: Option<Value>,
        reason: String,
    },
}

fn error_reply(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Frames client bytes; push what arrives, take frames until `None`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Scanning for the header block's end resumes here.
    scanned: usize,
    /// A header block was read: where it ends, and the body's length.
    header: Option<(usize, usize)>,
}

/// Where the header block of `buf` ends (after its blank line), and how
/// long that blank line was.
fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.saturating_sub(3);
    while i < buf.len() {
        if buf[i..].starts_with(b"\r\n\r\n") {
            return Some(i + 4);
        }
        if buf[i..].starts_with(b"\n\n") {
            return Some(i + 2);
        }
        i += 1;
    }
    None
}

/// Where the next `Content-Length` header (any case) starts at or after `from`.
fn next_header(buf: &[u8], from: usize) -> Option<usize> {
    const NAME: &[u8] = b"content-length";
    (from..buf.len().saturating_sub(NAME.len() - 1))
        .find(|&i| buf[i..i + NAME.len()].eq_ignore_ascii_case(NAME))
}

/// The body length a header block declares.
fn content_length(header: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(header).map_err(|_| "a header that is not UTF-8".to_owned())?;
    let mut length = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("a header line without a colon: {line:?}"));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            let n: usize = value
                .parse()
                .map_err(|_| format!("Content-Length {value:?} is not a byte count"))?;
            if n > MAX_MESSAGE_BYTES {
                return Err(format!(
                    "Content-Length {n} is over the limit of {MAX_MESSAGE_BYTES} bytes"
                ));
            }
            length = Some(n);
        }
        // Content-Type and unknown headers: the body is read as UTF-8 JSON
        // whatever they say.
    }
    length.ok_or_else(|| "a header block without Content-Length".to_owned())
}

/// Whether a value may be a JSON-RPC id.
fn valid_id(id: &Value) -> bool {
    matches!(id, Value::Number(_) | Value::String(_))
}

/// Checks a body as a JSON-RPC 2.0 message.
pub fn classify(body: &[u8]) -> Incoming {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Incoming::Rejected {
                reply: Some(error_reply(Value::Null, PARSE_ERROR, "Parse error")),
                reason: format!("the body is not JSON: {e}"),
            };
        }
    };
    let reject = |id: Value, reason: &str| Incoming::Rejected {
        reply: Some(error_reply(id, INVALID_REQUEST, reason)),
        reason: reason.to_owned(),
    };
    let Value::Object(object) = &value else {
        return match value {
            Value::Array(_) => reject(Value::Null, "batches are not part of LSP"),
            _ => reject(Value::Null, "a message must be a JSON object"),
        };
    };
    let id = object.get("id");
    let matched = id.filter(|id| valid_id(id)).cloned().unwrap_or(Value::Null);
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return reject(matched, "`jsonrpc` must be \"2.0\"");
    }
    if let Some(id) = id
        && !valid_id(id)
        && (!id.is_null() || object.contains_key("method"))
    {
        return reject(Value::Null, "an id must be a number or a string");
    }
    match object.get("method") {
        Some(Value::String(_)) => {
            if object
                .get("params")
                .is_some_and(|p| !p.is_object() && !p.is_array() && !p.is_null())
            {
                return reject(matched, "params must be an object or an array");
            }
            Incoming::Message(value)
        }
        Some(_) => reject(matched, "`method` must be a string"),
        None if id.is_some() && (object.contains_key("result") != object.contains_key("error")) => {
            Incoming::Message(value)
        }
        // A response that matches nothing: answering a response is not allowed.
        None => Incoming::Rejected {
            reply: None,
            reason: "neither a request nor a response".to_owned(),
        },
    }
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes waiting for the rest of their frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, if the input holds one.
    pub fn next_frame(&mut self) -> Option<Incoming> {
        if self.header.is_none() {
            // Bytes before a header are garbage (or headers nib ignores).
            match next_header(&self.buf, 0) {
                Some(0) => {}
                Some(at) => {
                    tracing::debug!(bytes = at, "skipping bytes before a header");
                    self.drop_front(at);
                }
                None => {
                    // Keep what could be the start of a header.
                    let cut = self.buf.len().saturating_sub(16);
                    if cut > 0 {
                        tracing::debug!(bytes = cut, "skipping bytes before a header");
                        self.drop_front(cut);
                    }
                    return None;
                }
            }
            let Some(end) = header_end(&self.buf, self.scanned) else {
                if self.buf.len() > MAX_HEADER_BYTES {
                    self.resync(1);
                    return Some(Incoming::Rejected {
                        reply: None,
                        reason: format!("a header block over {MAX_HEADER_BYTES} bytes"),
                    });
                }
                self.scanned = self.buf.len();
                return None;
            };
            match content_length(&self.buf[..end]) {
                Ok(length) => self.header = Some((end, length)),
                Err(reason) => {
                    // The body's extent is unknown: look for the next frame.
                    self.resync(end);
                    return Some(Incoming::Rejected {
                        reply: None,
                        reason,
                    });
                }
            }
        }
        let (end, length) = self.header?;
        if self.buf.len() < end + length {
            return None;
        }
        let frame = classify(&self.buf[end..end + length]);
        self.drop_front(end + length);
        Some(frame)
    }

    fn drop_front(&mut self, n: usize) {
        self.buf.drain(..n);
        self.scanned = 0;
        self.header = None;
    }

    /// Drops a bad frame's start and everything up to the next header.
    fn resync(&mut self, from: usize) {
        let at = next_header(&self.buf, from.min(self.buf.len())).unwrap_or(self.buf.len());
        self.drop_front(at);
    }
}

/// Frames a message for the wire.
pub fn frame(message: &Value) -> Vec<u8> {
    let body = message.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// What the reader does at once, ahead of the service's queue.
pub trait FastPath: Send + Sync {
    /// `$/cancelRequest` for `id`: stop its work now (the service still
    /// answers it with RequestCancelled).
    fn cancel(&self, id: &Value);
    /// An answer to a cheap request, without queueing it (`nib/status`).
    fn answer(&self, method: &str) -> Option<Value>;
}

/// Reads the client, passes valid messages to the service through `service`
/// and sends error answers to `replies`, until the input ends.
pub async fn read_client<R, W>(
    mut input: R,
    mut service: W,
    replies: mpsc::UnboundedSender<Value>,
    fast: Arc<dyn FastPath>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut decoder = Decoder::default();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match input.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.push(&chunk[..n]);
        while let Some(incoming) = decoder.next_frame() {
            let message = match incoming {
                Incoming::Message(m) => m,
                Incoming::Rejected { reply, reason } => {
                    tracing::warn!(%reason, "rejected a client message");
                    if let Some(reply) = reply {
                        let _ = replies.send(reply);
                    }
                    continue;
                }
            };
            let Some(message) = fast_path(message, &replies, fast.as_ref()) else {
                continue;
            };
            if service.write_all(&frame(&message)).await.is_err() {
                return;
            }
        }
    }
    if decoder.pending() > 0 {
        tracing::warn!(
            bytes = decoder.pending(),
            "the input ended inside a message"
        );
    }
}

/// Handles what must not wait; returns the message to pass on, if any.
fn fast_path(
    mut message: Value,
    replies: &mpsc::UnboundedSender<Value>,
    fast: &dyn FastPath,
) -> Option<Value> {
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        // A response to one of the server's requests.
        return Some(message);
    };
    let method = method.to_owned();
    let id = message.get("id").cloned();
    match (method.as_str(), id) {
        ("$/cancelRequest", None) => {
            if let Some(id) = message.pointer("/params/id") {
                fast.cancel(id);
            }
        }
        (m, Some(id)) if m.starts_with("$/") => {
            let _ = replies.send(error_reply(
                id,
                METHOD_NOT_FOUND,
                &format!("nib does not offer {m}"),
            ));
            return None;
        }
        (m, Some(id)) => {
            if let Some(result) = fast.answer(m) {
                let _ = replies.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
                return None;
            }
            if m == "textDocument/inlineCompletion"
                && let Some(params) = message.get_mut("params").and_then(Value::as_object_mut)
            {
                params.insert(REQUEST_ID_KEY.to_owned(), id);
            }
        }
        _ => {}
    }
    Some(message)
}

/// Writes the service's frames and the reader's replies to the client,
/// whole frames only, until both have ended.
pub async fn write_client<R, W>(
    mut service: R,
    mut output: W,
    mut replies: mpsc::UnboundedReceiver<Value>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The service's output is well-formed; the decoder only cuts it into
    // frames so that replies never land inside one.
    let mut decoder = Decoder::default();
    let mut chunk = vec![0u8; 64 << 10];
    let mut service_open = true;
    let mut replies_open = true;
    while service_open || replies_open {
        tokio::select! {
            read = service.read(&mut chunk), if service_open => match read {
                Ok(0) | Err(_) => service_open = false,
                Ok(n) => {
                    decoder.push(&chunk[..n]);
                    while let Some(frame) = decoder.next_frame() {
                        if let Incoming::Message(m) = frame
                            && !write_all(&mut output, &m).await
                        {
                            return;
                        }
                    }
                }
            },
            reply = replies.recv(), if replies_open => match reply {
                None => replies_open = false,
                Some(m) => {
                    if !write_all(&mut output, &m).await {
                        return;
                    }
                }
            },
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(output: &mut W, message: &Value) -> bool {
    output.write_all(&frame(message)).await.is_ok() && output.flush().await.is_ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn frames(bytes: &[u8]) -> Vec<Incoming> {
        let mut d = Decoder::default();
        d.push(bytes);
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    fn ok(body: &str) -> Vec<u8> {
        frame(&serde_json::from_str(body).expect("json"))
    }

    fn message(v: &Incoming) -> Option<&Value> {
        match v {
            Incoming::Message(m) => Some(m),
            Incoming::Rejected { .. } => None,
        }
    }

    fn reply_code(v: &Incoming) -> Option<(Value, i64)> {
        match v {
            Incoming::Rejected { reply: Some(r), .. } => {
                Some((r["id"].clone(), r["error"]["code"].as_i64()?))
            }
            _ => None,
        }
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"nib/status"}"#;

    #[test]
    fn lenient_headers_are_read() {
        let body = PING;
        for header in [
            format!("Content-Length: {}\r\n\r\n", body.len()),
            format!("content-length:{}\r\n\r\n", body.len()),
            format!("CONTENT-LENGTH: {}\n\n", body.len()),
            format!(
                "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ),
        ] {
            let got = frames(format!("{header}{body}").as_bytes());
            assert_eq!(got.len(), 1, "{header:?}");
            assert_eq!(message(&got[0]).map(|m| &m["id"]), Some(&json!(7)));
        }
    }

    #[test]
    fn bad_messages_get_the_specified_errors_and_the_next_frame_is_read() {
        let cases: &[(&str, Option<(Value, i64)>)] = &[
            ("{not json", Some((Value::Null, PARSE_ERROR))),
            ("[1, 2]", Some((Value::Null, INVALID_REQUEST))),
            ("42", Some((Value::Null, INVALID_REQUEST))),
            (
                r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#,
                Some((json!(3), INVALID_REQUEST)),
            ),
            (
                r#"{"jsonrpc":"2.0","id":4,"method":5}"#,
                Some((json!(4), INVALID_REQUEST)),
            ),
            (
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
                Some((Value::Null, INVALID_REQUEST)),
            ),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"x","params":3}"#,
                Some((json!(5), INVALID_REQUEST)),
            ),
            (r#"{"jsonrpc":"2.0","id":6}"#, None),
        ];
        for (body, want) in cases {
            let mut bytes = format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes();
            bytes.extend(ok(PING));
            let got = frames(&bytes);
            assert_eq!(got.len(), 2, "{body}: {got:?}");
            assert_eq!(reply_code(&got[0]), *want, "{body}");
            assert_eq!(
                message(&got[1]).map(|m| &m["id"]),
                Some(&json!(7)),
                "{body}"
            );
        }
    }

    #[test]
    fn broken_headers_are_skipped_up_to_the_next_frame() {
        for garbage in [
            "Content-Length: abc\r\n\r\n{}".to_owned(),
            "Content-Length: -5\r\n\r\n".to_owned(),
            format!("Content-Length: {}\r\n\r\n", u64::MAX),
            "X-Nothing: 1\r\n\r\n{}".to_owned(),
            "\r\n\r\nhello world".to_owned(),
            "Content-Length 12\r\n\r\n".to_owned(),
            "\u{0}\u{1}\u{ff}".to_owned(),
        ] {
            let mut bytes = garbage.clone().into_bytes();
            bytes.extend(ok(PING));
            let got = frames(&bytes);
            assert_eq!(
                got.last().and_then(message).map(|m| &m["id"]),
                Some(&json!(7)),
                "{garbage:?}: {got:?}"
            );
            assert!(got.iter().filter_map(message).count() == 1, "{garbage:?}");
        }
    }

    #[test]
    fn frames_may_arrive_a_byte_at_a_time() {
        let mut bytes = ok(PING);
        bytes.extend(ok(
            r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
        ));
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in bytes {
            d.push(&[b]);
            got.extend(std::iter::from_fn(|| d.next_frame()));
        }
        assert_eq!(got.len(), 2);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn oversized_frames_and_endless_headers_are_dropped_without_buffering_them() {
        let mut d = Decoder::default();
        d.push(format!("Content-Length: {}\r\n\r\n", MAX_MESSAGE_BYTES + 1).as_bytes());
        assert!(matches!(d.next_frame(), Some(Incoming::Rejected { .. })));
        d.push(&vec![b'a'; 1 << 20]);
        assert_eq!(d.next_frame(), None);
        assert!(d.pending() <= 16, "{}", d.pending());
        d.push(b"Content-Length: 5\r\nX: ");
        d.push(&vec![b'y'; MAX_HEADER_BYTES + 1]);
        assert!(matches!(d.next_frame(), Some(Incoming::Rejected { .. })));
        d.push(&ok(PING));
        let rest: Vec<_> = std::iter::from_fn(|| d.next_frame()).collect();
        assert_eq!(
            rest.last().and_then(message).map(|m| &m["id"]),
            Some(&json!(7))
        );
    }

    struct Recorder(std::sync::Mutex<Vec<Value>>);

    impl FastPath for Recorder {
        fn cancel(&self, id: &Value) {
            self.0.lock().expect("lock").push(id.clone());
        }
        fn answer(&self, method: &str) -> Option<Value> {
            (method == "nib/status").then(|| json!({"state": "ready"}))
        }
    }

    #[test]
    fn the_fast_path_cancels_answers_and_refuses_dollar_requests() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let fast = Recorder(Default::default());
        let cancel = json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 9}});
        assert_eq!(fast_path(cancel.clone(), &tx, &fast), Some(cancel));
        assert_eq!(*fast.0.lock().expect("lock"), [json!(9)]);
        let status = json!({"jsonrpc": "2.0", "id": 1, "method": "nib/status"});
        assert_eq!(fast_path(status, &tx, &fast), None);
        assert_eq!(
            rx.try_recv().ok().map(|r| r["result"]["state"].clone()),
            Some(json!("ready"))
        );
        let dollar = json!({"jsonrpc": "2.0", "id": 2, "method": "$/custom"});
        assert_eq!(fast_path(dollar, &tx, &fast), None);
        assert_eq!(
            rx.try_recv().ok().map(|r| r["error"]["code"].clone()),
            Some(json!(METHOD_NOT_FOUND))
        );
        let inline = json!({"jsonrpc": "2.0", "id": "a", "method": "textDocument/inlineCompletion",
            "params": {"nibRequestId": 99}});
        let passed = fast_path(inline, &tx, &fast).expect("passed on");
        assert_eq!(passed["params"][REQUEST_ID_KEY], json!("a"));
        let response = json!({"jsonrpc": "2.0", "id": 3, "result": null});
        assert_eq!(fast_path(response.clone(), &tx, &fast), Some(response));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic_and_a_valid_frame_after_them_is_read(
            garbage in proptest::collection::vec(any::<u8>(), 0..512),
            split in 0usize..600,
        ) {
            // Whatever came before, once a frame arrives whole after a
            // blank line, it is read (garbage can only swallow frames that
            // it overlaps).
            let mut bytes = garbage.clone();
            bytes.extend_from_slice(b"\r\n\r\n");
            bytes.extend(ok(PING));
            let mut d = Decoder::default();
            let split = split.min(bytes.len());
            d.push(&bytes[..split]);
            let mut got: Vec<Incoming> = std::iter::from_fn(|| d.next_frame()).collect();
            d.push(&bytes[split..]);
            got.extend(std::iter::from_fn(|| d.next_frame()));
            prop_assert!(d.pending() <= MAX_HEADER_BYTES + 16);
            let declared_huge = garbage.windows(14).any(|w| w.eq_ignore_ascii_case(b"content-length"));
            if !declared_huge {
                prop_assert_eq!(got.last().and_then(message).map(|m| m["id"].clone()), Some(json!(7)));
            }
        }
    }
}
