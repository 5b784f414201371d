//! A private SMTP server that keeps what it receives: aiosmtpd (Python, installed by
//! `cargo xtask deps`) with its Maildir handler, on a random port of 127.0.0.1, each message a
//! file in a private temporary directory.
//!
//! A test can also pick the port first and start the server later ([`SmtpServer::reserve`],
//! [`SmtpServer::start_now`]), or stop and restart it, to see a service ride out a relay that
//! is down.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::process::{Launch, START_ATTEMPTS, Supervisor, free_port, wait_until_ready};

/// One received message: its headers (names lower case, values unfolded) and its raw text.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub headers: Vec<(String, String)>,
    pub raw: String,
}

impl ReceivedMail {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Who the server was told to deliver it to (the envelope's RCPT TO).
    pub fn envelope_to(&self) -> Option<&str> {
        self.header("x-rcptto")
    }

    /// The message's text parts decoded (quoted-printable and base64 bodies of every part),
    /// joined: what a reader would see, for a test to search.
    pub fn text(&self) -> String {
        decoded_parts(&self.raw).join("\n")
    }
}

/// An aiosmtpd server keeping every message it accepts in a Maildir. Killed, and its
/// directory removed, when dropped.
pub struct SmtpServer {
    python: PathBuf,
    port: u16,
    supervisor: Supervisor,
    running: bool,
}

impl SmtpServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        for _ in 0..START_ATTEMPTS {
            let mut server = Self::reserve()?;
            match server.launch().await? {
                Launch::Ready => return Ok(server),
                Launch::PortTaken => continue,
            }
        }
        bail!("aiosmtpd: every port tried was taken ({START_ATTEMPTS} attempts)")
    }

    /// Picks a port and a directory without starting the server: connections are refused
    /// until [`SmtpServer::start_now`].
    pub fn reserve() -> anyhow::Result<Self> {
        let python = python_with_aiosmtpd()?;
        let supervisor = Supervisor::new("smtp")?;
        Ok(Self {
            python,
            port: free_port()?,
            supervisor,
            running: false,
        })
    }

    /// Starts a reserved (or stopped) server on its port.
    pub async fn start_now(&mut self) -> anyhow::Result<()> {
        match self.launch().await? {
            Launch::Ready => Ok(()),
            Launch::PortTaken => bail!("aiosmtpd: port {} was taken meanwhile", self.port),
        }
    }

    /// Kills the server: connections are refused until [`SmtpServer::start_now`]. What it
    /// received stays.
    pub fn stop(&mut self) {
        self.supervisor.kill();
        self.running = false;
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Maildir the messages are written to.
    pub fn mail_dir(&self) -> PathBuf {
        self.supervisor.dir().join("mail")
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        read_maildir(&self.mail_dir())
    }

    /// Waits until at least `count` messages arrived (panicking after `timeout`), and returns
    /// all of them.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                started.elapsed() < timeout,
                "expected {count} messages at the SMTP server, got {} after {timeout:?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn launch(&mut self) -> anyhow::Result<Launch> {
        let dir = self.supervisor.dir().to_path_buf();
        let log = dir.join("smtp.log");
        let skip = std::fs::metadata(&log).map(|meta| meta.len()).unwrap_or(0);
        let mut command = Command::new(&self.python);
        command
            .args(["-m", "aiosmtpd", "-n", "-d", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.mail_dir());
        self.supervisor.spawn(command, &log)?;
        let port = self.port;
        let launch = wait_until_ready(
            &mut self.supervisor,
            "aiosmtpd",
            &log,
            skip,
            "Server is listening",
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await?;
        self.running = matches!(launch, Launch::Ready);
        Ok(launch)
    }
}

/// A python3 that can import aiosmtpd: `SMTP_PYTHON`, the workspace's `.dev/venv`, or
/// `python3` on PATH.
fn python_with_aiosmtpd() -> anyhow::Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(python) = std::env::var_os("SMTP_PYTHON") {
        candidates.push(PathBuf::from(python));
    }
    candidates.push(crate::binaries::workspace_root().join(".dev/venv/bin/python3"));
    candidates.push(PathBuf::from("python3"));
    for python in candidates {
        let works = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|output| output.status.success());
        if works {
            return Ok(python);
        }
    }
    Err(anyhow::anyhow!(
        "no python3 with aiosmtpd: run `make deps` (or `cargo xtask deps`) to install it"
    ))
    .context("starting the test SMTP server")
}

/// The messages of a Maildir, oldest first (Maildir names start with the delivery time).
fn read_maildir(dir: &Path) -> Vec<ReceivedMail> {
    let Ok(entries) = std::fs::read_dir(dir.join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let modified = entry.metadata().ok()?.modified().ok()?;
            Some((
                modified,
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, _, path)| std::fs::read(path).ok())
        .map(|bytes| parse_mail(&String::from_utf8_lossy(&bytes)))
        .collect()
}

fn parse_mail(raw: &str) -> ReceivedMail {
    let raw = raw.replace("\r\n", "\n");
    let head = raw.split("\n\n").next().unwrap_or_default();
    ReceivedMail {
        headers: parse_headers(head),
        raw,
    }
}

/// Header lines, unfolded, names lower case.
fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    headers
}

/// The decoded bodies of every leaf part of a MIME message (a single-part message is its own
/// leaf).
fn decoded_parts(raw: &str) -> Vec<String> {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let headers = parse_headers(head);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let content_type = get("content-type");
    if let Some(boundary) = boundary_of(&content_type) {
        let delimiter = format!("--{boundary}");
        return body
            .split(&delimiter)
            .skip(1)
            .take_while(|part| !part.starts_with("--"))
            .flat_map(|part| decoded_parts(part.trim_start_matches('\n')))
            .collect();
    }
    let encoding = get("content-transfer-encoding").to_ascii_lowercase();
    vec![match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body),
        _ => body.to_owned(),
    }]
}

fn boundary_of(content_type: &str) -> Option<String> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    content_type.split(';').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        (key.eq_ignore_ascii_case("boundary")).then(|| value.trim_matches('"').to_owned())
    })
}

fn decode_quoted_printable(text: &str) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.as_bytes().iter().copied().peekable();
    while let Some(byte) = input.next() {
        if byte != b'=' {
            bytes.push(byte);
            continue;
        }
        let first = input.next();
        match first {
            // A soft line break.
            Some(b'\n') => {}
            Some(b'\r') => {
                if input.peek() == Some(&b'\n') {
                    input.next();
                }
            }
            Some(high) => {
                let low = input.next().unwrap_or(b'0');
                let hex = [high, low];
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(decoded) => bytes.push(decoded),
                    None => bytes.extend([b'=', high, low]),
                }
            }
            None => bytes.push(b'='),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn decode_base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut bytes = Vec::new();
    for byte in text.bytes() {
        let Some(value) = ALPHABET.iter().position(|&c| c == byte) else {
            continue;
        };
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_messages_are_decoded_part_by_part() {
        let raw = "Subject: Hello\r\n there\r\nContent-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nTotal: USD 1=2C234.50 and a long=\r\n line\r\n--b1\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n--b1--\r\n";
        let mail = parse_mail(raw);
        assert_eq!(mail.header("subject"), Some("Hello there"));
        let text = mail.text();
        assert!(
            text.contains("Total: USD 1,234.50 and a long line"),
            "{text}"
        );
        assert!(text.contains("<b>hi</b>"), "{text}");
    }
}
