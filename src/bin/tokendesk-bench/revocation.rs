//! How long a revoke through one instance takes to be refused by another: tokens are made for a
//! person of their own, each is verified at B (so B has it cached), revoked through A's API, and
//! asked of B until B refuses it. Plain HTTP/1.1 on one kept-alive connection per instance, so
//! the figures are the servers', not a client library's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tokendesk::db::Db;
use tokendesk::domain::{Email, Expiry, Role, ScopeSet, TokenRequest};
use tokendesk::tokens::{store, TokenOwner};
use tokendesk::users::{self, NewUser};

/// Past this, a revoke counts as never heard and the run fails.
const GIVE_UP: Duration = Duration::from_secs(5);

/// Milliseconds from A's answer to the revoke until B's first refusal, one per revoke.
pub fn measure(db: &Db, a: &str, b: &str, revokes: usize) -> anyhow::Result<Vec<f64>> {
    let (manager, tokens) = make_tokens(db, revokes)?;
    let (mut at_a, mut at_b) = (Http::connect(a)?, Http::connect(b)?);
    let mut waits = Vec::with_capacity(revokes);
    for (id, secret) in tokens {
        // Twice: the second answer is B's cache's.
        for _ in 0..2 {
            let status = at_b.get_me(&secret)?;
            anyhow::ensure!(status == 200, "B answered {status} to a live token");
        }
        let path = format!("/api/v1/personal-access-tokens/{id}");
        anyhow::ensure!(
            at_a.request("DELETE", &path, &manager)? == 204,
            "A did not revoke"
        );
        let answered = Instant::now();
        loop {
            match at_b.get_me(&secret)? {
                401 => break,
                200 => anyhow::ensure!(answered.elapsed() < GIVE_UP, "B never refused"),
                other => anyhow::bail!("B answered {other}"),
            }
        }
        waits.push(answered.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(waits)
}

/// A person with a token that may revoke and `count` tokens to revoke.
fn make_tokens(db: &Db, count: usize) -> anyhow::Result<(String, Vec<(i64, String)>)> {
    let made = db.write_blocking(move |conn| {
        let email = Email::parse(&format!(
            "revocation-{:08x}@example.com",
            rand::random::<u32>()
        ))
        .expect("a valid address");
        let person = users::create(
            conn,
            NewUser {
                email: &email,
                display_name: "revocation bench",
                password_hash: None,
                role: Role::User,
            },
        )
        .map_err(|e| match e {
            users::CreateUserError::Query(e) => e,
            other => diesel::result::Error::QueryBuilderError(other.to_string().into()),
        })?;
        let mut make = |name: String, scope: &str| {
            let request = TokenRequest {
                name,
                expiry: Expiry::Never,
                scopes: ScopeSet::parse([scope]).expect("a known scope"),
                allowed_addresses: None,
            };
            store::create(conn, TokenOwner::Person(person.id), person.id, &request)
                .map(|made| (made.token.id, made.secret.expose().to_owned()))
                .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
        };
        let (_, manager) = make("manager".into(), "personalAccessToken:write")?;
        let tokens = (0..count)
            .map(|i| make(format!("revoked {i}"), "tag:read"))
            .collect::<diesel::QueryResult<Vec<_>>>()?;
        Ok((manager, tokens))
    })?;
    Ok(made)
}

/// One kept-alive HTTP/1.1 connection.
struct Http {
    host: String,
    stream: BufReader<TcpStream>,
}

impl Http {
    fn connect(address: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            host: address.to_owned(),
            stream: BufReader::new(stream),
        })
    }

    fn get_me(&mut self, bearer: &str) -> anyhow::Result<u16> {
        self.request("GET", "/api/v1/me", bearer)
    }

    /// Sends a request without a body; returns the status, the body read and dropped.
    fn request(&mut self, method: &str, path: &str, bearer: &str) -> anyhow::Result<u16> {
        write!(
            self.stream.get_mut(),
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\nContent-Length: 0\r\n\r\n",
            self.host
        )?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("not an HTTP answer: {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
                anyhow::ensure!(
                    !name.eq_ignore_ascii_case("transfer-encoding"),
                    "a chunked answer"
                );
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok(status)
    }
}
