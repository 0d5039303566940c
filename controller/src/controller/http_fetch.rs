//! The http resolver's I/O: one GET of a url a run names, bounded in
//! time and size, for a task or pipeline file (read as the git resolver's).
//!
//! The url is a tenant's, so: only http:// and https:// (checked by
//! `remote` before this runs), no redirects followed (a redirect could
//! lead anywhere the first url was not allowed to), at most
//! `MAX_FILE_BYTES` read, and nothing of the response body is ever put in
//! a message.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::info;

use base64::Engine as _;

use crate::remote::MAX_FILE_BYTES;

use super::resolver::FetchedFile;

/// `Basic <base64(user:password)>`, an http resolver login's header.
pub fn basic_authorization(username: &str, password: &str) -> String {
    let pair = format!("{username}:{password}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// `work`'s outcome, or why not once `timeout` (the controller's
/// `--resolver-timeout`, which bounds every fetch and registry lookup) has
/// passed without one.
pub async fn within<T>(timeout: Duration, work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {}s (--resolver-timeout)", timeout.as_secs())))
}

/// The file at `url` (sent with `authorization` when given), or why not.
/// Never longer than `timeout`.
pub async fn fetch_file(url: String, authorization: Option<String>, timeout: Duration) -> Result<FetchedFile, String> {
    let started = Instant::now();
    let outcome = within(timeout, get(&url, authorization)).await;
    info!(%url, ok = outcome.is_ok(), seconds = started.elapsed().as_secs_f64(), "http resolver fetch ended");
    outcome
        .map(|text| FetchedFile { text, commit: None })
        .map_err(|why| format!("http resolver: {url}: {why}"))
}

async fn get(url: &str, authorization: Option<String>) -> Result<String, String> {
    let mut headers = Vec::new();
    if let Some(value) = authorization {
        headers.push((hyper::header::AUTHORIZATION, value));
    }
    let answer = get_bounded(url, headers, MAX_FILE_BYTES).await?;
    let status = answer.status;
    if status.is_redirection() {
        return Err(format!("the server answered {status} (redirects are not followed)"));
    }
    if !status.is_success() {
        return Err(format!("the server answered {status}"));
    }
    String::from_utf8(answer.body).map_err(|_| "the file is not UTF-8 text".to_string())
}

/// What a server answered: any status (the caller judges it), its headers,
/// and at most the bytes asked for.
pub struct Answer {
    pub status: hyper::StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

/// One GET of `url` with `headers` (an Authorization header is marked
/// sensitive, so it is never logged), reading at most `max_bytes` of the
/// body; redirects are answers, not followed.
pub async fn get_bounded(
    url: &str,
    headers: Vec<(hyper::header::HeaderName, String)>,
    max_bytes: usize,
) -> Result<Answer, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a valid url: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let mut request = hyper::Request::get(uri);
    for (name, value) in headers {
        let mut value = hyper::header::HeaderValue::from_str(&value)
            .map_err(|_| format!("the {name} header is not a valid header value"))?;
        value.set_sensitive(name == hyper::header::AUTHORIZATION);
        request = request.header(name, value);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("not a valid request: {e}"))?;
    let response = if https {
        // The system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` too); the
        // controller's own image ships none.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| {
                format!("no trusted CA certificates to check https with ({e}); mount a bundle and set SSL_CERT_FILE")
            })?
            .https_only()
            .enable_http1()
            .build();
        Client::builder(TokioExecutor::new())
            .build::<_, Empty<Bytes>>(https)
            .request(request)
            .await
    } else {
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        Client::builder(TokioExecutor::new())
            .build::<_, Empty<Bytes>>(http)
            .request(request)
            .await
    }
    .map_err(|e| format!("request failed: {e}"))?;
    let (parts, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the answer failed: {e}"))?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > max_bytes {
                return Err(format!("the answer is over {max_bytes} bytes, the most that is read"));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: bytes,
    })
}

/// Loopback HTTP servers for the tests of the I/O that speaks HTTP (this
/// module's and the registry's).
#[cfg(test)]
pub(crate) mod test_server {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A loopback server answering each request with what `answer` makes
    /// of its head (as text); its `127.0.0.1:<port>`.
    pub fn serve(answer: impl Fn(&str) -> Vec<u8> + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0u8; 8192];
                let read = stream.read(&mut request).unwrap_or(0);
                let head = String::from_utf8_lossy(&request[..read]).to_string();
                let _ = stream.write_all(&answer(&head));
            }
        });
        format!("127.0.0.1:{port}")
    }

    /// An HTTP/1.1 response; `headers` are `name: value\r\n` lines.
    pub fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut text = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n",
            body.len()
        )
        .into_bytes();
        text.extend_from_slice(body);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::{response as answer, serve as serve_with};
    use super::*;

    /// A loopback server answering every request with `response`; a url on it.
    fn serve(response: Vec<u8>) -> String {
        format!("http://{}/tasks/build.yaml", serve_with(move |_| response.clone()))
    }

    const LIMIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_file_is_read_and_errors_name_the_url_and_the_status() {
        let url = serve(answer("200 OK", "", b"kind: MyTask\n"));
        let file = fetch_file(url, None, LIMIT).await.expect("the file");
        assert_eq!((file.text.as_str(), file.commit), ("kind: MyTask\n", None));

        let url = serve(answer("404 Not Found", "", b"secret page content"));
        let error = fetch_file(url.clone(), None, LIMIT).await.expect_err("404");
        assert!(error.contains(&url) && error.contains("404"), "{error}");
        assert!(!error.contains("secret page content"), "no body in messages: {error}");

        let url = serve(answer("302 Found", "location: http://169.254.169.254/\r\n", b""));
        let error = fetch_file(url, None, LIMIT).await.expect_err("a redirect");
        assert!(error.contains("redirects are not followed"), "{error}");

        let url = serve(answer("200 OK", "", &vec![b'a'; MAX_FILE_BYTES + 1]));
        let error = fetch_file(url, None, LIMIT).await.expect_err("too large");
        assert!(error.contains("over 1048576 bytes"), "{error}");
    }

    #[tokio::test]
    async fn a_login_travels_in_the_authorization_header() {
        let address = serve_with(|head| {
            if head.to_ascii_lowercase().contains("authorization: basic y2k6adbrzw4=") {
                answer("200 OK", "", b"kind: MyTask\n")
            } else {
                answer("401 Unauthorized", "", b"")
            }
        });
        let url = format!("http://{address}/t.yaml");
        let error = fetch_file(url.clone(), None, LIMIT).await.expect_err("no login");
        assert!(error.contains("401"), "{error}");
        let login = Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ci:h0ken")
        ));
        let file = fetch_file(url, login, LIMIT).await.expect("logged in");
        assert_eq!(file.text, "kind: MyTask\n");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_given_up_on_after_the_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}/t.yaml", listener.local_addr().expect("address"));
        let started = Instant::now();
        let error = fetch_file(url, None, Duration::from_millis(300))
            .await
            .expect_err("silent");
        assert!(error.contains("no answer within"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }
}
