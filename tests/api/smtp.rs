//! A real SMTP server for the tests, on a random local port: enough of the protocol for
//! lettre (greeting, EHLO/HELO, AUTH PLAIN and LOGIN, MAIL FROM, RCPT TO, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT). It keeps every message accepted, and can be told to answer
//! 451 ("try again later") to the next messages, as a mail server in trouble does, or to hold
//! messages unanswered (a sender killed then has not delivered them).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message the server accepted.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: headers and body, dot-unstuffed.
    pub raw: String,
}

impl Mail {
    /// The Subject header, unfolded and decoded when lettre encoded it (text beyond ASCII).
    pub fn subject(&self) -> String {
        let head = self.raw.split_once("\r\n\r\n").map_or("", |(h, _)| h);
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        let line = unfolded
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default();
        decode_words(line)
    }

    /// The body, with quoted-printable soft line breaks and escapes undone.
    pub fn body(&self) -> String {
        let body = self.raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        if self
            .raw
            .contains("Content-Transfer-Encoding: quoted-printable")
        {
            decode_quoted_printable(body)
        } else if self.raw.contains("Content-Transfer-Encoding: base64") {
            String::from_utf8(base64_decode(&body.replace("\r\n", ""))).unwrap()
        } else {
            body.to_owned()
        }
    }
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Mail>>>,
    refusals: Arc<AtomicUsize>,
    holding: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = SmtpServer {
            port,
            inbox: Arc::default(),
            refusals: Arc::default(),
            holding: Arc::default(),
            held: Arc::default(),
        };
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = serving.clone();
                tokio::spawn(async move {
                    let _ = session.serve(stream).await;
                });
            }
        });
        server
    }

    /// `smtp://127.0.0.1:PORT`, with `user:password@` when given.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("smtp://{user}:{password}@127.0.0.1:{}", self.port),
            None => format!("smtp://127.0.0.1:{}", self.port),
        }
    }

    /// Answers 451 to the next `n` messages instead of accepting them.
    pub fn refuse_next(&self, n: usize) {
        self.refusals.store(n, Ordering::SeqCst);
    }

    /// While `hold` is set, a message's data is read but never answered: the sender waits, and
    /// the message counts as delivered only if answered.
    pub fn hold(&self, hold: bool) {
        self.holding.store(hold, Ordering::SeqCst);
    }

    /// How many messages were held unanswered.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived (20 s at most); returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let started = Instant::now();
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{n} mails expected, {} arrived: {mails:#?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn serve(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 test.local ESMTP ready\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let verb = command
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: String = match verb.as_str() {
                "EHLO" => "250-test.local\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n\
                           250-SMTPUTF8\r\n250 OK"
                    .into(),
                "HELO" => "250 test.local".into(),
                "AUTH" => {
                    let parts: Vec<&str> = command.split_whitespace().collect();
                    let mechanism = parts.get(1).map(|m| m.to_ascii_uppercase());
                    let prompts = match (mechanism.as_deref(), parts.len()) {
                        (Some("PLAIN"), 2) => 1,
                        (Some("LOGIN"), 2) => 2,
                        (Some("LOGIN"), _) => 1,
                        _ => 0,
                    };
                    for prompt in ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"]
                        .iter()
                        .take(prompts)
                    {
                        write.write_all(format!("{prompt}\r\n").as_bytes()).await?;
                        line.clear();
                        lines.read_line(&mut line).await?;
                    }
                    "235 Authenticated".into()
                }
                "MAIL" => {
                    from = address_in(&command);
                    to.clear();
                    "250 OK".into()
                }
                "RCPT" => {
                    to.push(address_in(&command));
                    "250 OK".into()
                }
                "DATA" => {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut raw = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        raw.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    if self.holding.load(Ordering::SeqCst) {
                        self.held.fetch_add(1, Ordering::SeqCst);
                        // Until the sender gives up or is gone.
                        line.clear();
                        let _ = lines.read_line(&mut line).await;
                        return Ok(());
                    }
                    let refused = self
                        .refusals
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if refused {
                        "451 Try again later".into()
                    } else {
                        self.inbox.lock().unwrap().push(Mail {
                            from: std::mem::take(&mut from),
                            to: std::mem::take(&mut to),
                            raw,
                        });
                        "250 Queued".into()
                    }
                }
                "RSET" => {
                    from.clear();
                    to.clear();
                    "250 OK".into()
                }
                "NOOP" => "250 OK".into(),
                "QUIT" => {
                    write.write_all(b"221 Bye\r\n").await?;
                    return Ok(());
                }
                _ => "502 Command not implemented".into(),
            };
            write.write_all(format!("{reply}\r\n").as_bytes()).await?;
        }
    }
}

/// The address in `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address_in(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.rfind('>').unwrap_or(command.len());
    command[start..end].to_owned()
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`) back to text; other words as they are. Space
/// between two encoded words is not part of the text.
fn decode_words(header: &str) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut last_encoded = None;
    for word in header.split_whitespace() {
        let encoded = word
            .strip_prefix("=?utf-8?b?")
            .or_else(|| word.strip_prefix("=?UTF-8?B?"))
            .and_then(|w| w.strip_suffix("?="));
        if last_encoded.is_some() && !(last_encoded == Some(true) && encoded.is_some()) {
            out.push(b' ');
        }
        match encoded {
            Some(encoded) => out.extend(base64_decode(encoded)),
            None => out.extend(word.bytes()),
        }
        last_encoded = Some(encoded.is_some());
    }
    String::from_utf8(out).unwrap()
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(value) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}
