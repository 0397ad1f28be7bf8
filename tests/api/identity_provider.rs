//! A real OpenID Connect provider for the tests, served over HTTP on a random port: discovery,
//! authorize (it signs in whoever the test says is at the keyboard), token (checks the client
//! secret, the code's one use, the redirect URI and PKCE) and JWKS. Its ID tokens are RS256,
//! signed with a key generated once per test run; a test can make it misbehave the ways a
//! broken or hostile provider would.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::json;
use sha2::Digest;

pub const CLIENT_ID: &str = "tokendesk-test";
pub const CLIENT_SECRET: &str = "client-secret-of-the-test-provider-1f9c";

/// Who is at the provider's keyboard when the next sign-in reaches it.
#[derive(Clone, Debug)]
pub struct Person {
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub groups: Vec<String>,
}

impl Person {
    pub fn new(subject: &str, email: &str, name: &str) -> Self {
        Self {
            subject: subject.into(),
            email: email.into(),
            email_verified: true,
            name: name.into(),
            groups: Vec::new(),
        }
    }
}

/// How the next ID tokens come out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Minting {
    Honest,
    /// The nonce of another sign-in.
    WrongNonce,
    /// Expired an hour ago.
    Expired,
    /// Signed with a key that is not in the JWKS (under the published key's id).
    WrongKey,
    /// Issued to another client.
    WrongAudience,
}

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
    person: Person,
}

struct State {
    issuer: String,
    person: Option<Person>,
    minting: Minting,
    grants: HashMap<String, Grant>,
    /// Every code and ID token handed out, for a test that searches a log for them.
    handed_out: Vec<String>,
    /// A second key is published and signs from now on (the first stays published).
    rotated: bool,
}

/// The provider; it serves until the test ends or [`Provider::stop`].
#[derive(Clone)]
pub struct Provider {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

/// The signing keys, made once per test run: the first published, the second published once
/// the provider rotates its keys, the third never.
fn keys() -> &'static [PKey<Private>; 3] {
    static KEYS: OnceLock<[PKey<Private>; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = || PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        [key(), key(), key()]
    })
}

/// 24 random letters and digits.
fn random_text() -> String {
    let mut bytes = [0u8; 18];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    b64(&bytes)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Provider {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(State {
            issuer: issuer.clone(),
            person: None,
            minting: Minting::Honest,
            grants: HashMap::new(),
            handed_out: Vec::new(),
            rotated: false,
        }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route("/jwks", web::get().to(jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Provider {
            issuer,
            state,
            server: handle,
        }
    }

    /// The provider goes down: nothing answers at its address any more.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }

    /// Forgets every code handed out, as a provider does when they expire.
    pub fn expire_codes(&self) {
        self.state.lock().unwrap().grants.clear();
    }

    /// Every code and ID token handed out so far.
    #[allow(dead_code)]
    pub fn handed_out(&self) -> Vec<String> {
        self.state.lock().unwrap().handed_out.clone()
    }

    /// The person the next sign-in signs in.
    pub fn at_the_keyboard(&self, person: Person) {
        self.state.lock().unwrap().person = Some(person);
    }

    /// Publishes a second key and signs with it from now on, as a provider rotating keys does.
    pub fn rotate_keys(&self) {
        self.state.lock().unwrap().rotated = true;
    }

    pub fn mint(&self, minting: Minting) {
        self.state.lock().unwrap().minting = minting;
    }

    /// Settings that point tokendesk at this provider.
    pub fn settings(&self) -> tokendesk::config::IdentityProviderArgs {
        tokendesk::config::IdentityProviderArgs {
            oidc_issuer: Some(self.issuer.clone()),
            oidc_client_id: Some(CLIENT_ID.into()),
            oidc_client_secret: Some(CLIENT_SECRET.parse().unwrap()),
            oidc_provider_name: "Acme SSO".into(),
            ..Default::default()
        }
    }
}

async fn discovery(state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let issuer = state.lock().unwrap().issuer.clone();
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let jwk = |key: &PKey<Private>, kid: &str| {
        let rsa = key.rsa().unwrap();
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())})
    };
    let mut published = vec![jwk(&keys()[0], "k1")];
    if state.lock().unwrap().rotated {
        published.push(jwk(&keys()[1], "k2"));
    }
    HttpResponse::Ok().json(json!({ "keys": published }))
}

/// Signs in whoever is at the keyboard (no page: the tests play the person) and sends the
/// browser back with a code.
async fn authorize(
    state: web::Data<Arc<Mutex<State>>>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let q = |key: &str| query.get(key).cloned().unwrap_or_default();
    if q("client_id") != CLIENT_ID
        || q("response_type") != "code"
        || q("code_challenge_method") != "S256"
        || q("code_challenge").is_empty()
        || q("nonce").is_empty()
        || !q("scope").split(' ').any(|s| s == "openid")
    {
        return HttpResponse::BadRequest().body(format!("bad authorize request: {query:?}"));
    }
    let mut state = state.lock().unwrap();
    let Some(person) = state.person.clone() else {
        return HttpResponse::BadRequest().body("nobody is at the keyboard");
    };
    let code = format!("code-{}", random_text());
    state.handed_out.push(code.clone());
    state.grants.insert(
        code.clone(),
        Grant {
            nonce: q("nonce"),
            challenge: q("code_challenge"),
            redirect_uri: q("redirect_uri"),
            person,
        },
    );
    let back = format!(
        "{}?code={code}&state={}",
        q("redirect_uri"),
        percent_encoding::utf8_percent_encode(&q("state"), percent_encoding::NON_ALPHANUMERIC)
    );
    HttpResponse::Found()
        .insert_header(("location", back))
        .finish()
}

fn token_error(error: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": error}))
}

async fn token(
    req: HttpRequest,
    state: web::Data<Arc<Mutex<State>>>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let f = |key: &str| form.get(key).cloned().unwrap_or_default();
    // client_secret_basic (the form encoding of each half, then base64) or client_secret_post.
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let client = match basic {
        Some(pair) => pair
            .split_once(':')
            .map(|(id, secret)| (id.to_owned(), secret.to_owned())),
        None => Some((f("client_id"), f("client_secret"))),
    };
    if client != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return token_error("invalid_client");
    }
    let mut state = state.lock().unwrap();
    // A code is good once.
    let Some(grant) = state.grants.remove(&f("code")) else {
        return token_error("invalid_grant");
    };
    let verifier_digest = b64(&sha2::Sha256::digest(f("code_verifier").as_bytes()));
    if f("grant_type") != "authorization_code"
        || f("redirect_uri") != grant.redirect_uri
        || verifier_digest != grant.challenge
    {
        return token_error("invalid_grant");
    }
    let id_token = id_token(&state.issuer, &grant, state.minting, state.rotated);
    state.handed_out.push(id_token.clone());
    HttpResponse::Ok().json(json!({
        "access_token": "an-access-token-tokendesk-never-uses",
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
}

fn id_token(issuer: &str, grant: &Grant, minting: Minting, rotated: bool) -> String {
    let now = chrono::Utc::now().timestamp();
    let person = &grant.person;
    let mut claims = json!({
        "iss": issuer,
        "sub": person.subject,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": grant.nonce,
        "email": person.email,
        "email_verified": person.email_verified,
        "name": person.name,
        "groups": person.groups,
    });
    match minting {
        Minting::Honest | Minting::WrongKey => {}
        Minting::WrongNonce => claims["nonce"] = json!("a-nonce-of-another-sign-in"),
        Minting::Expired => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        Minting::WrongAudience => claims["aud"] = json!("another-client"),
    }
    let kid = if rotated { "k2" } else { "k1" };
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    // The wrong key is never published, but signs under the id of the one that is.
    let key = match (minting, rotated) {
        (Minting::WrongKey, _) => &keys()[2],
        (_, true) => &keys()[1],
        _ => &keys()[0],
    };
    let mut signer = Signer::new(MessageDigest::sha256(), key).unwrap();
    signer.update(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(&signer.sign_to_vec().unwrap()))
}
