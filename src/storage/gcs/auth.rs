//! Credentials for Google Cloud Storage, by Google's own conventions (as its client libraries look
//! for them): `STORAGE_EMULATOR_HOST` means no credentials; otherwise a key file named by the
//! registry's `keyfile` or inline `credentials`, or by `GOOGLE_APPLICATION_CREDENTIALS`, or
//! gcloud's application-default credentials, or else the metadata server of the VM or pod.
//!
//! A service-account key signs a JWT (RS256) that the token endpoint exchanges for an access
//! token; an authorized-user file (gcloud's) trades its refresh token; the metadata server hands
//! out a token of the attached service account. Tokens are kept until a minute before they expire.

use crate::storage::StorageError;
use crate::storage::http::{Shared, form, post_form, request};
use base64::Engine as _;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Read and write on objects: listing, reading, deleting, and writing the lock.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
const METADATA_TOKEN: &str =
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Where access tokens come from.
pub enum Credentials {
    /// An emulator: requests go without `Authorization`.
    None,
    ServiceAccount {
        email: String,
        token_uri: String,
        key: Arc<dyn rustls::sign::SigningKey>,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: String,
        refresh_token: String,
    },
    MetadataServer,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "none (emulator)",
            Credentials::ServiceAccount { .. } => "service account key",
            Credentials::AuthorizedUser { .. } => "authorized user",
            Credentials::MetadataServer => "metadata server",
        })
    }
}

fn bad(what: &str, why: impl std::fmt::Display) -> StorageError {
    StorageError::Other {
        key: what.to_owned(),
        message: why.to_string(),
    }
}

impl Credentials {
    /// Credentials from a key file's JSON (`service_account` or `authorized_user`); `what` names
    /// where it came from in errors.
    pub fn from_json(what: &str, json: &[u8]) -> Result<Credentials, StorageError> {
        let v: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| bad(what, format!("not a Google credentials file: {e}")))?;
        let field = |name: &str| {
            v.get(name)
                .and_then(|x| x.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(what, format!("no {name} in the credentials")))
        };
        match v.get("type").and_then(|t| t.as_str()) {
            Some("service_account") => {
                use rustls::pki_types::pem::PemObject as _;
                let pem = field("private_key")?;
                let der = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes())
                    .map_err(|e| bad(what, format!("private_key: {e}")))?;
                let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der)
                    .map_err(|e| bad(what, format!("private_key: {e}")))?;
                Ok(Credentials::ServiceAccount {
                    email: field("client_email")?,
                    token_uri: field("token_uri").unwrap_or_else(|_| DEFAULT_TOKEN_URI.into()),
                    key,
                })
            }
            Some("authorized_user") => Ok(Credentials::AuthorizedUser {
                client_id: field("client_id")?,
                client_secret: field("client_secret")?,
                refresh_token: field("refresh_token")?,
            }),
            other => Err(bad(
                what,
                format!(
                    "credentials of type {other:?} are not supported (service_account, \
                     authorized_user)"
                ),
            )),
        }
    }

    /// The chain Google's clients follow when nothing was named: `GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's application-default credentials, the metadata server.
    pub fn default_chain() -> Result<Credentials, StorageError> {
        if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            return Credentials::from_file(std::path::Path::new(&path));
        }
        if let Some(home) = std::env::var_os("HOME") {
            let adc = std::path::Path::new(&home)
                .join(".config/gcloud/application_default_credentials.json");
            if adc.is_file() {
                return Credentials::from_file(&adc);
            }
        }
        Ok(Credentials::MetadataServer)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Credentials, StorageError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| bad(&shown, e))?;
        Credentials::from_json(&shown, &bytes)
    }
}

/// Access tokens, fetched when needed and kept until shortly before they expire.
#[derive(Debug)]
pub struct Tokens {
    credentials: Credentials,
    cached: crate::storage::remote::TokenCache,
}

impl Tokens {
    pub fn new(credentials: Credentials) -> Tokens {
        Tokens {
            credentials,
            cached: Default::default(),
        }
    }

    /// The `Authorization` header's value, or `None` for an emulator.
    pub async fn header(&self, http: &Shared) -> Result<Option<String>, StorageError> {
        if matches!(self.credentials, Credentials::None) {
            return Ok(None);
        }
        self.cached.bearer(|| self.fetch(http)).await.map(Some)
    }

    async fn fetch(&self, http: &Shared) -> Result<(String, Duration), StorageError> {
        let (url, reply) = match &self.credentials {
            Credentials::None => unreachable!("checked by the caller"),
            Credentials::ServiceAccount {
                email,
                token_uri,
                key,
            } => {
                let jwt = signed_jwt(email, token_uri, key.as_ref())?;
                let body = form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &jwt),
                ]);
                (token_uri.as_str(), post_form(http, token_uri, body).await?)
            }
            Credentials::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let body = form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("refresh_token", refresh_token),
                ]);
                (
                    DEFAULT_TOKEN_URI,
                    post_form(http, DEFAULT_TOKEN_URI, body).await?,
                )
            }
            Credentials::MetadataServer => {
                let get = || {
                    request(
                        http::Method::GET,
                        METADATA_TOKEN,
                        &[("metadata-flavor", "Google".into())],
                        Bytes::new(),
                    )
                };
                (METADATA_TOKEN, http.send(METADATA_TOKEN, &get).await?)
            }
        };
        if !reply.ok() {
            return Err(reply.error(url));
        }
        let v: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| bad(url, format!("not a token response: {e}")))?;
        let token = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| bad(url, "no access_token in the response"))?;
        let secs = v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(300);
        Ok((token.to_owned(), Duration::from_secs(secs)))
    }
}

/// The JWT a service account signs to ask for a token (RS256, an hour).
fn signed_jwt(
    email: &str,
    audience: &str,
    key: &dyn rustls::sign::SigningKey,
) -> Result<String, StorageError> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64(serde_json::json!({
        "iss": email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600,
    })
    .to_string()
    .as_bytes());
    let signing_input = format!("{header}.{claims}");
    let signer = key
        .choose_scheme(&[rustls::SignatureScheme::RSA_PKCS1_SHA256])
        .ok_or_else(|| bad(email, "the service account's key is not an RSA key"))?;
    let signature = signer
        .sign(signing_input.as_bytes())
        .map_err(|e| bad(email, format!("cannot sign the token request: {e}")))?;
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_wrong_with_a_credentials_file() {
        let e = Credentials::from_json("k.json", b"{\"type\":\"external_account\"}").unwrap_err();
        assert!(e.to_string().contains("external_account"), "{e}");
        let e = Credentials::from_json("k.json", b"not json").unwrap_err();
        assert!(e.to_string().starts_with("k.json: "), "{e}");
        let e = Credentials::from_json(
            "k.json",
            br#"{"type":"service_account","client_email":"a@b","private_key":"nope"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("private_key"), "{e}");
        let c = Credentials::from_json(
            "k.json",
            br#"{"type":"authorized_user","client_id":"i","client_secret":"s","refresh_token":"r"}"#,
        )
        .unwrap();
        assert!(matches!(c, Credentials::AuthorizedUser { .. }));
    }
}
