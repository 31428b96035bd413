//! The HTTP side of the remote engine: one agent per server that contacts
//! only the configured address (no redirects, no proxy from the
//! environment), JSON requests, and server-sent events read line by line.
//! Errors name the server and what went wrong, never the API key.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde_json::Value;

use super::RemoteError;

/// How long connecting may take: a server on the network answers in well
/// under this, and a completion should fail fast when it is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most bytes of an error body quoted in a message.
const QUOTED_BODY: usize = 300;
/// Largest response body read whole (scoring answers carry a few numbers
/// per token; a server sending more is not answering this request).
const MAX_BODY: u64 = 64 << 20;
/// Longest line of an event stream.
const MAX_LINE: usize = 4 << 20;

/// A server's base address and its credentials.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// The base URL, without a trailing `/`.
    base: String,
    /// `Bearer …`, when the user named an environment variable holding a key.
    authorization: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Client {
    /// `timeout` bounds each request from connecting to its last byte.
    pub fn new(base: &str, api_key: Option<String>, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            // Only the configured address is contacted.
            .max_redirects(0)
            .proxy(None)
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(timeout))
            .user_agent(concat!("nib/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            authorization: api_key.map(|key| format!("Bearer {key}")),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs `body` and returns the response's JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        let response = self.send(path, body)?;
        self.read_json(path, response)
    }

    /// GETs `path` and returns the response's JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, RemoteError> {
        let mut request = self.agent.get(self.url(path));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let response = request.call().map_err(|e| self.transport(path, e))?;
        let response = self.check_status(path, response)?;
        self.read_json(path, response)
    }

    /// The JSON body of a successful answer.
    fn read_json(
        &self,
        path: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Value, RemoteError> {
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| self.transport(path, e))?;
        serde_json::from_str(&text).map_err(|e| RemoteError::BadResponse {
            url: self.url(path),
            message: format!("not JSON ({e}): {}", quote(&text)),
        })
    }

    /// POSTs `body` and returns the server-sent events of the answer, one
    /// `data:` payload at a time. Dropping the stream closes the
    /// connection, which is how a superseded request is aborted.
    pub fn post_events(&self, path: &str, body: &Value) -> Result<Events, RemoteError> {
        let response = self.send(path, body)?;
        let (_, body) = response.into_parts();
        Ok(Events {
            reader: BufReader::new(Box::new(body.into_reader())),
            url: self.url(path),
        })
    }

    fn send(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<ureq::http::Response<ureq::Body>, RemoteError> {
        let mut request = self.agent.post(self.url(path));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let response = request
            .send_json(body)
            .map_err(|e| self.transport(path, e))?;
        self.check_status(path, response)
    }

    /// An answer other than 2xx becomes an error quoting the server's reason.
    fn check_status(
        &self,
        path: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>, RemoteError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status.is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "elsewhere".to_owned(), quote);
            return Err(RemoteError::Status {
                url: self.url(path),
                status: status.as_u16(),
                reason: format!(
                    "a redirect to {location}, which nib does not follow (only the configured URL is contacted): configure that URL instead"
                ),
            });
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        Err(RemoteError::Status {
            url: self.url(path),
            status: status.as_u16(),
            reason: error_reason(&body),
        })
    }

    fn transport(&self, path: &str, error: ureq::Error) -> RemoteError {
        classify(self.url(path), error)
    }
}

/// What a failed exchange with the server at `url` means for the user.
fn classify(url: String, error: ureq::Error) -> RemoteError {
    match error {
        ureq::Error::Timeout(_) => RemoteError::Timeout { url },
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            RemoteError::Timeout { url }
        }
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => RemoteError::Unreachable {
            url,
            reason: error.to_string(),
        },
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::NotConnected
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            RemoteError::Unreachable {
                url,
                reason: e.to_string(),
            }
        }
        other => RemoteError::BadResponse {
            url,
            message: other.to_string(),
        },
    }
}

/// The `data:` payloads of a server-sent event stream.
pub struct Events {
    reader: BufReader<Box<dyn Read + Send>>,
    url: String,
}

impl Events {
    /// The next payload; `None` at `[DONE]` or the end of the stream.
    pub fn next_payload(&mut self) -> Result<Option<Value>, RemoteError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut self.reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .map_err(|e| self.failed(e))?;
            if read == 0 {
                return Ok(None);
            }
            if line.len() >= MAX_LINE {
                return Err(RemoteError::BadResponse {
                    url: self.url.clone(),
                    message: "an event line longer than 4 MiB".into(),
                });
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            // Comments (`: ping`), `event:`/`id:` fields and blank separators.
            let Some(data) = text.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                return Ok(None);
            }
            return serde_json::from_str(data)
                .map(Some)
                .map_err(|e| RemoteError::BadResponse {
                    url: self.url.clone(),
                    message: format!("an event that is not JSON ({e}): {}", quote(data)),
                });
        }
    }

    /// A read of the body failed: past its time limit, or the answer
    /// broke off. (ureq wraps its own errors, timeouts among them, in the
    /// reader's `io::Error`; `From` unwraps them.)
    fn failed(&self, e: std::io::Error) -> RemoteError {
        let error = ureq::Error::from(e);
        let reason = error.to_string();
        match classify(self.url.clone(), error) {
            timeout @ RemoteError::Timeout { .. } => timeout,
            _ => RemoteError::Unreachable {
                url: self.url.clone(),
                reason: format!("the answer broke off: {reason}"),
            },
        }
    }
}

/// The message of an OpenAI-style error body (`{"error": {"message": …}}`,
/// `{"error": "…"}`, `{"detail": …}`), else the body itself, shortened.
fn error_reason(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let error = v.get("error").or_else(|| v.get("detail"))?;
        Some(match error {
            Value::String(s) => s.clone(),
            Value::Object(map) => map
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned),
            other => other.to_string(),
        })
    });
    quote(from_json.as_deref().unwrap_or(body))
}

/// `text` on one line, at most [`QUOTED_BODY`] characters.
fn quote(text: &str) -> String {
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reasons_come_from_the_usual_shapes() {
        assert_eq!(
            error_reason(r#"{"error": {"message": "prompt too long", "type": "x"}}"#),
            "prompt too long"
        );
        assert_eq!(
            error_reason(r#"{"error": "model not found"}"#),
            "model not found"
        );
        assert_eq!(error_reason(r#"{"detail": "Not Found"}"#), "Not Found");
        assert_eq!(error_reason("Bad Gateway\n"), "Bad Gateway");
        assert_eq!(quote(&"x".repeat(400)).chars().count(), QUOTED_BODY + 1);
        assert_eq!(quote("a\u{1b}[31mb"), "a [31mb");
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let client = Client::new(
            "http://127.0.0.1:1/",
            Some("sk-secret".into()),
            Duration::from_secs(1),
        );
        let shown = format!("{client:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert_eq!(client.base(), "http://127.0.0.1:1");
    }
}
