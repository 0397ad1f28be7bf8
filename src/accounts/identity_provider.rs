//! The company's identity provider, spoken to over OpenID Connect (authorization code flow with
//! PKCE, `state` and `nonce`): where a sign-in starts, and what a finished one proves. Discovery
//! and keys come from the issuer's `/.well-known/openid-configuration`; the ID token's signature,
//! issuer, audience, expiry and nonce are all checked by `openidconnect` before anything in it
//! is believed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::accounts::sign_in::PasswordSignIn;
use crate::config::IdentityProviderArgs;
use crate::domain::Email;

/// How long the provider's discovery document and keys are reused before they are read again
/// (a key the provider rotated in is seen within it).
const METADATA_FOR: Duration = Duration::from_secs(300);
/// How long the provider may take to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read from the provider (a discovery document, keys, a token).
const ANSWER_MAX: u64 = 1024 * 1024;
/// Sign-ins waiting on the provider at once; past it, a sign-in is refused at once rather than
/// given a thread (a slow provider must not take every thread the process may have).
const REQUESTS_AT_ONCE: usize = 16;
/// After discovery failed, how long sign-ins are refused without asking the provider again.
const FAILURE_FOR: Duration = Duration::from_secs(15);

type ProviderClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in through the provider did not complete: each reads to the person as a
/// sentence, and is recorded in the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("The identity provider cannot be reached right now. Try again in a moment, or ask an admin.")]
    Unreachable(String),
    #[error("The identity provider did not accept the sign-in: {0}.")]
    Refused(String),
    #[error("This sign-in cannot be finished: {0}. Start it again.")]
    Mismatched(String),
    #[error("The identity provider's answer could not be verified, so it was not used.")]
    Unverified(String),
}

impl ProviderError {
    /// What the audit trail records: the reason, never a secret (codes and tokens are not in
    /// these messages).
    pub fn reason(&self) -> String {
        match self {
            ProviderError::Unreachable(why) => format!("provider unreachable: {why}"),
            ProviderError::Refused(why) => format!("provider refused: {why}"),
            ProviderError::Mismatched(why) => format!("answer not this sign-in's: {why}"),
            ProviderError::Unverified(why) => format!("ID token not verified: {why}"),
        }
    }
}

/// What a sign-in that was started keeps until the provider sends the person back: kept in
/// the (encrypted) session cookie of the browser that started it, and used once.
#[derive(Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    pkce_verifier: String,
    /// Where to go once signed in.
    pub next: String,
}

impl PendingSignIn {
    /// Whether the `state` the provider sent back is this sign-in's, compared in constant time.
    pub fn state_matches(&self, state: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.state.as_bytes().ct_eq(state.as_bytes()).into()
    }
}

/// Who the provider says signed in, from a verified ID token.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The provider's issuer, which the ID token was verified to come from.
    pub issuer: String,
    /// The provider's `sub`: stable for the person, whatever their address becomes (unique
    /// within its issuer only).
    pub subject: String,
    pub email: Option<Email>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The configured claim says admin.
    pub admin: bool,
}

/// How people sign in here: through the provider (when one is set), and who may use a password.
pub struct SignInMethods {
    pub provider: Option<IdentityProvider>,
    pub passwords: PasswordSignIn,
}

impl SignInMethods {
    pub fn from_settings(settings: &IdentityProviderArgs) -> anyhow::Result<Self> {
        let break_glass_admin = settings
            .break_glass_admin
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|why| anyhow::anyhow!("TOKENDESK_BREAK_GLASS_ADMIN: {why}"))?;
        Ok(Self {
            provider: IdentityProvider::from_settings(settings)?,
            passwords: PasswordSignIn {
                on: settings.password_sign_in,
                break_glass_admin,
                provider_name: settings.oidc_provider_name.clone(),
            },
        })
    }
}

/// The configured provider. Its requests run on a thread of their own, never on the blocking
/// threads the database calls (and so the token check) use: a provider that hangs holds up
/// only the sign-ins waiting on it, for at most [`PROVIDER_TIMEOUT`] a request.
pub struct IdentityProvider {
    pub name: String,
    inner: Arc<Inner>,
    at_once: Arc<tokio::sync::Semaphore>,
}

struct Inner {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    admin_claim: Option<(String, String)>,
    agent: ureq::Agent,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
    /// When discovery last failed.
    failed_at: Mutex<Option<Instant>>,
}

impl IdentityProvider {
    /// The provider the settings name, if any; an incomplete setting is an error at start.
    pub fn from_settings(settings: &IdentityProviderArgs) -> anyhow::Result<Option<Self>> {
        let Some(issuer) = &settings.oidc_issuer else {
            anyhow::ensure!(
                settings.password_sign_in,
                "TOKENDESK_PASSWORD_SIGN_IN=false needs an identity provider (TOKENDESK_OIDC_ISSUER)"
            );
            return Ok(None);
        };
        // Exactly as configured: ID tokens must name the issuer as the provider spells it,
        // trailing slash and all.
        let issuer = IssuerUrl::new(issuer.clone())
            .map_err(|e| anyhow::anyhow!("TOKENDESK_OIDC_ISSUER is not a URL: {e}"))?;
        let host = issuer.url().host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let client_id = settings.oidc_client_id.clone().ok_or_else(|| {
            anyhow::anyhow!("TOKENDESK_OIDC_ISSUER needs TOKENDESK_OIDC_CLIENT_ID")
        })?;
        anyhow::ensure!(
            settings.password_sign_in || settings.break_glass_admin.is_some(),
            "with TOKENDESK_PASSWORD_SIGN_IN=false, name a break-glass admin \
             (TOKENDESK_BREAK_GLASS_ADMIN) who can still sign in when the provider is down"
        );
        let admin_claim = match (&settings.oidc_admin_claim, &settings.oidc_admin_value) {
            (Some(claim), Some(value)) => Some((claim.clone(), value.clone())),
            (None, None) => None,
            _ => anyhow::bail!(
                "TOKENDESK_OIDC_ADMIN_CLAIM and TOKENDESK_OIDC_ADMIN_VALUE go together"
            ),
        };
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(PROVIDER_TIMEOUT))
            // Following redirects would let a provider's answer send requests anywhere.
            .max_redirects(0)
            // The provider's error answers are read, not turned into transport errors.
            .http_status_as_error(false)
            // The client secret and the codes travel in clear over plain HTTP: only to a
            // provider on this machine (a test's, a local Keycloak).
            .https_only(!loopback)
            .build()
            .into();
        Ok(Some(Self {
            name: settings.oidc_provider_name.clone(),
            inner: Arc::new(Inner {
                issuer,
                client_id: ClientId::new(client_id),
                client_secret: settings
                    .oidc_client_secret
                    .as_ref()
                    .map(|secret| ClientSecret::new(secret.expose().to_owned())),
                admin_claim,
                agent,
                metadata: Mutex::new(None),
                failed_at: Mutex::new(None),
            }),
            at_once: Arc::new(tokio::sync::Semaphore::new(REQUESTS_AT_ONCE)),
        }))
    }

    /// Starts a sign-in: the provider's address to send the person to, and what to keep until
    /// they come back to `redirect`.
    pub async fn begin(
        &self,
        redirect: String,
        next: String,
    ) -> Result<(String, PendingSignIn), ProviderError> {
        let inner = self.inner.clone();
        self.off_thread(move || inner.begin(&redirect, next)).await
    }

    /// Finishes a sign-in the provider sent back with `code`: exchanges it (with the PKCE
    /// verifier) and verifies the ID token against the sign-in's nonce.
    pub async fn finish(
        &self,
        pending: PendingSignIn,
        code: String,
        redirect: String,
    ) -> Result<Identity, ProviderError> {
        let inner = self.inner.clone();
        self.off_thread(move || inner.finish(pending, code, &redirect))
            .await
    }

    /// Runs `work` on a thread of its own, at most [`REQUESTS_AT_ONCE`] at a time, and waits
    /// for it without blocking the executor.
    async fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
    ) -> Result<T, ProviderError> {
        let Ok(turn) = self.at_once.clone().try_acquire_owned() else {
            return Err(ProviderError::Unreachable(
                "too many sign-ins are waiting on the provider".into(),
            ));
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("identity-provider".into())
            .spawn(move || {
                let _ = answer.send(work());
                drop(turn);
            })
            .map_err(|e| ProviderError::Unreachable(format!("no thread for the request: {e}")))?;
        answered
            .await
            .map_err(|_| ProviderError::Unreachable("the request was lost".into()))?
    }
}

impl Inner {
    /// One HTTP request to the provider, for `openidconnect`.
    fn send(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, ureq::Error> {
        let (parts, mut body) = self.agent.run(request)?.into_parts();
        let body = body.with_config().limit(ANSWER_MAX).read_to_vec()?;
        Ok(openidconnect::HttpResponse::from_parts(parts, body))
    }

    /// The discovery document (and keys), read again once [`METADATA_FOR`] has passed.
    fn client(&self, redirect: &str) -> Result<ProviderClient, ProviderError> {
        let cached = self
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(read, _)| read.elapsed() < METADATA_FOR)
            .map(|(_, metadata)| metadata.clone());
        let metadata = match cached {
            Some(metadata) => metadata,
            None => {
                let failed = *self.failed_at.lock().unwrap_or_else(|e| e.into_inner());
                if failed.is_some_and(|at| at.elapsed() < FAILURE_FOR) {
                    return Err(ProviderError::Unreachable(
                        "it did not answer moments ago".into(),
                    ));
                }
                let http = |request| self.send(request);
                let read = CoreProviderMetadata::discover(&self.issuer, &http).map_err(|e| {
                    *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Instant::now());
                    ProviderError::Unreachable(error_chain(&e))
                })?;
                *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), read.clone()));
                read
            }
        };
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| ProviderError::Unreachable(format!("the redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret.clone(),
        )
        .set_redirect_uri(redirect))
    }

    fn begin(
        &self,
        redirect: &str,
        next: String,
    ) -> Result<(String, PendingSignIn), ProviderError> {
        let client = self.client(redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(openidconnect::Scope::new("email".into()))
            .add_scope(openidconnect::Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingSignIn {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next,
        };
        Ok((url.to_string(), pending))
    }

    fn finish(
        &self,
        pending: PendingSignIn,
        code: String,
        redirect: &str,
    ) -> Result<Identity, ProviderError> {
        let client = self.client(redirect)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ProviderError::Unreachable(format!("no token endpoint: {e}")))?;
        let http = |request| self.send(request);
        let answer = request
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request(&http)
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(refusal) => {
                    ProviderError::Refused(refusal.error().to_string())
                }
                other => ProviderError::Unreachable(error_chain(&other)),
            })?;
        let id_token = answer
            .id_token()
            .ok_or_else(|| ProviderError::Unverified("no ID token in the answer".into()))?;
        let nonce = Nonce::new(pending.nonce);
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            // Signed with a key the provider rotated in since its keys were read: read them
            // again, once, and verify with those.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let fresh = self.client(redirect)?;
                let verifier = fresh.id_token_verifier();
                let verified = id_token.claims(&verifier, &nonce).cloned();
                verified
            }
            verified => verified.cloned(),
        }
        .map_err(|e| ProviderError::Unverified(e.to_string()))?;
        let email = claims
            .email()
            .and_then(|email| Email::parse(email.as_str()).ok());
        Ok(Identity {
            issuer: self.issuer.as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email,
            email_verified: claims.email_verified() == Some(true),
            name: claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_owned()),
            admin: self.says_admin(&id_token.to_string()),
        })
    }

    /// Whether the verified ID token's configured claim holds the admin value (equal to it, or
    /// among its values when it is a list, as `groups` usually is).
    fn says_admin(&self, id_token: &str) -> bool {
        let Some((claim, value)) = &self.admin_claim else {
            return false;
        };
        let payload = id_token
            .split('.')
            .nth(1)
            .and_then(|part| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(part)
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
        match payload.as_ref().and_then(|claims| claims.get(claim)) {
            Some(serde_json::Value::String(held)) => held == value,
            Some(serde_json::Value::Array(held)) => held.iter().any(|v| v.as_str() == Some(value)),
            _ => false,
        }
    }
}

/// An error and its causes, in one line (the HTTP client's error alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IdentityProviderArgs {
        IdentityProviderArgs {
            oidc_issuer: Some("https://login.example.com/realms/acme".into()),
            oidc_client_id: Some("tokendesk".into()),
            ..Default::default()
        }
    }

    fn refusal(settings: IdentityProviderArgs) -> String {
        match SignInMethods::from_settings(&settings) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn incomplete_or_contradictory_settings_stop_the_start_with_a_reason() {
        assert!(SignInMethods::from_settings(&settings())
            .unwrap()
            .provider
            .is_some());
        let none = SignInMethods::from_settings(&IdentityProviderArgs::default()).unwrap();
        assert!(none.provider.is_none() && none.passwords.on);

        let mut no_client = settings();
        no_client.oidc_client_id = None;
        assert!(refusal(no_client).contains("TOKENDESK_OIDC_CLIENT_ID"));
        let mut locked_out = settings();
        locked_out.password_sign_in = false;
        assert!(refusal(locked_out).contains("TOKENDESK_BREAK_GLASS_ADMIN"));
        let no_provider = IdentityProviderArgs {
            password_sign_in: false,
            ..Default::default()
        };
        assert!(refusal(no_provider).contains("TOKENDESK_OIDC_ISSUER"));
        let mut half_claim = settings();
        half_claim.oidc_admin_claim = Some("groups".into());
        assert!(refusal(half_claim).contains("go together"));
        let mut bad_admin = settings();
        bad_admin.break_glass_admin = Some("not an address".into());
        assert!(refusal(bad_admin).contains("TOKENDESK_BREAK_GLASS_ADMIN"));
    }

    #[test]
    fn only_the_break_glass_admin_signs_in_with_a_password_while_passwords_are_off() {
        let mut off = settings();
        off.password_sign_in = false;
        off.break_glass_admin = Some("Ada@Example.com".into());
        let methods = SignInMethods::from_settings(&off).unwrap();
        let ada = Email::parse("ada@example.com").unwrap();
        let bo = Email::parse("bo@example.com").unwrap();
        assert!(methods.passwords.allows(Some(&ada)));
        assert!(!methods.passwords.allows(Some(&bo)));
        assert!(!methods.passwords.allows(None));
    }

    #[test]
    fn the_admin_claim_is_a_value_or_one_of_a_list() {
        let mut with_claim = settings();
        with_claim.oidc_admin_claim = Some("groups".into());
        with_claim.oidc_admin_value = Some("admins".into());
        let provider = IdentityProvider::from_settings(&with_claim)
            .unwrap()
            .unwrap();
        let token = |claims: serde_json::Value| {
            let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            format!("{}.{}.sig", b64("{}"), b64(&claims.to_string()))
        };
        assert!(provider
            .inner
            .says_admin(&token(serde_json::json!({"groups": ["a", "admins"]}))));
        assert!(provider
            .inner
            .says_admin(&token(serde_json::json!({"groups": "admins"}))));
        assert!(!provider
            .inner
            .says_admin(&token(serde_json::json!({"groups": ["admins-x"]}))));
        assert!(!provider
            .inner
            .says_admin(&token(serde_json::json!({"roles": ["admins"]}))));
        assert!(!provider.inner.says_admin("not a token"));
    }
}
