//! A minimal HTTP/1.1 keep-alive client: one request at a time per connection, the request
//! bytes written once, the response read by its Content-Length.
//!
//! It is deliberately small: the load generator shares the two cores with the servers it
//! measures, so every cycle it spends is taken from them, and the same cost lands on both
//! sides of every ratio.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::load::Worker;

/// A GET request for `path`, as bytes ready to write.
pub fn get_request(path: &str) -> Bytes {
    Bytes::from(format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
    ))
}

/// One keep-alive connection.
pub struct HttpConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl HttpConnection {
    pub async fn connect(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(8192),
        })
    }

    /// Sends `request` and reads the whole response; returns its status and body.
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<(u16, Bytes)> {
        self.stream.write_all(request).await?;
        loop {
            if let Some((status, header_length, body_length)) = parse_head(&self.buffer)? {
                let total = header_length + body_length;
                while self.buffer.len() < total {
                    self.read_more().await?;
                }
                let body = Bytes::copy_from_slice(&self.buffer[header_length..total]);
                self.buffer.drain(..total);
                return Ok((status, body));
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 8192];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

/// Status, head length and body length of a complete response head, or `None` when more
/// bytes are needed.
fn parse_head(buffer: &[u8]) -> anyhow::Result<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let header_length = match response.parse(buffer)? {
        httparse::Status::Complete(length) => length,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.context("a response without a status")?;
    let mut body_length = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            body_length = Some(std::str::from_utf8(header.value)?.trim().parse::<usize>()?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the benchmark client");
        }
    }
    let body_length = body_length.context("a response without Content-Length")?;
    Ok(Some((status, header_length, body_length)))
}

/// A request with extra headers and, when given, a JSON body, as bytes ready to write.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Bytes {
    let mut out =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        out.push_str("\r\n");
    }
    Bytes::from(out)
}

/// Requests for a load run: the `n`th operation sends `requests[n % len]`.
#[derive(Clone)]
pub struct RequestSet(Arc<Vec<Bytes>>);

impl RequestSet {
    pub fn new(paths: impl IntoIterator<Item = String>) -> Self {
        let requests: Vec<Bytes> = paths.into_iter().map(|p| get_request(&p)).collect();
        assert!(!requests.is_empty(), "a request set needs a request");
        Self(Arc::new(requests))
    }

    /// Requests made with [`request`].
    pub fn of_requests(requests: Vec<Bytes>) -> Self {
        assert!(!requests.is_empty(), "a request set needs a request");
        Self(Arc::new(requests))
    }

    fn get(&self, sequence: u64) -> &Bytes {
        &self.0[(sequence % self.0.len() as u64) as usize]
    }
}

/// A worker that sends GETs on one keep-alive connection; 2xx is a success.
pub struct HttpWorker {
    connection: HttpConnection,
    requests: RequestSet,
}

impl HttpWorker {
    pub async fn connect_many(
        address: SocketAddr,
        requests: &RequestSet,
        count: usize,
    ) -> anyhow::Result<Vec<Self>> {
        let mut workers = Vec::with_capacity(count);
        for _ in 0..count {
            workers.push(Self {
                connection: HttpConnection::connect(address).await?,
                requests: requests.clone(),
            });
        }
        Ok(workers)
    }
}

impl Worker for HttpWorker {
    async fn call(&mut self, sequence: u64) -> anyhow::Result<bool> {
        let request = self.requests.get(sequence).clone();
        let (status, _body) = self.connection.send(&request).await?;
        Ok((200..300).contains(&status))
    }
}

/// One GET on a new connection, for readiness checks and checking answers.
pub async fn get(address: SocketAddr, path: &str) -> anyhow::Result<(u16, Bytes)> {
    send(address, &get_request(path)).await
}

/// One request on a new connection.
pub async fn send(address: SocketAddr, request: &[u8]) -> anyhow::Result<(u16, Bytes)> {
    let mut connection = HttpConnection::connect(address).await?;
    connection.send(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_are_parsed_by_content_length() {
        let response =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_head(response).unwrap(), Some((200, 70, 2)));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(), None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }
}
