//! One OTLP/HTTP request over plain HTTP/1.1 (a new connection each time: one a second at
//! most, no keep-alive state to get wrong), and what of the answer the export needs: the
//! status, `Retry-After`, and the body (an Export*ServiceResponse, for its partial success).
//! Everything is read within the request's deadline and up to a bound, whatever the endpoint
//! sends.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::Url;
use crate::output::http::head_end;

/// A response's head is read up to this size.
const HEAD_MAX: usize = 16 * 1024;
/// A response's body is read up to this size: an Export*ServiceResponse is a few bytes, its
/// error message aside, which is not needed.
const BODY_MAX: usize = 64 * 1024;

/// A longer `Retry-After` is taken as this (longer than any timeout: the export gives up).
const RETRY_AFTER_MAX: u64 = 24 * 3600;

/// What the endpoint answered.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// `Retry-After` in seconds (the HTTP-date form is not used by collectors, and ignored).
    pub retry_after: Option<Duration>,
    /// The body, or its first BODY_MAX bytes.
    pub body: Vec<u8>,
}

/// POSTs `body` (protobuf) to `url` with `headers`, all of it before `deadline`.
pub fn post(
    url: &Url,
    headers: &[(String, String)],
    body: &[u8],
    deadline: Instant,
) -> std::io::Result<Response> {
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let addr = url
        .authority
        .to_socket_addrs()?
        .next()
        .ok_or(std::io::ErrorKind::NotFound)?;
    let mut stream = TcpStream::connect_timeout(&addr, left())?;
    stream.set_write_timeout(Some(left()))?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: coretrace/{}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.path,
        url.host,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    // The head, then as much of the body as it says (or until the end), within the deadline.
    let mut got = Vec::with_capacity(512);
    let mut buf = [0u8; 4096];
    let mut want = HEAD_MAX;
    loop {
        if let Some(end) = head_end(&got, 0) {
            let length = content_length(&got[..end]).unwrap_or(BODY_MAX);
            want = end + length.min(BODY_MAX);
        }
        if got.len() >= want {
            break;
        }
        if Instant::now() >= deadline {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left()))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    parse(&got).ok_or_else(|| std::io::ErrorKind::InvalidData.into())
}

/// The value of header `name` in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn content_length(head: &[u8]) -> Option<usize> {
    header(&String::from_utf8_lossy(head), "content-length")?
        .parse()
        .ok()
}

/// A response as read: a status line is needed; a head cut short still gives the status.
fn parse(got: &[u8]) -> Option<Response> {
    let end = head_end(got, 0).unwrap_or(got.len());
    let head = String::from_utf8_lossy(&got[..end]);
    if !head.starts_with("HTTP/1.") {
        return None;
    }
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let retry_after = header(&head, "retry-after")
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(RETRY_AFTER_MAX)));
    let body = got[end..got.len().min(end + BODY_MAX)].to_vec();
    Some(Response {
        status,
        retry_after,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_retry_after_and_body_are_read() {
        let r =
            parse(b"HTTP/1.1 503 Unavailable\r\nretry-after: 2\r\nContent-Length: 3\r\n\r\nabc")
                .unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(r.body, b"abc");
        let date = parse(b"HTTP/1.0 429 x\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n");
        assert_eq!(date.unwrap().retry_after, None);
        assert_eq!(parse(b"SSH-2.0\r\n\r\n"), None);
        assert_eq!(parse(b"HTTP/1.1 200").unwrap().status, 200);
    }
}
