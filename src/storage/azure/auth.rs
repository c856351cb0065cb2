//! Credentials for Azure Blob Storage, by Azure's own conventions: an account key (Shared Key
//! signing), a connection string, a SAS token, or a Microsoft Entra token from a client secret,
//! workload identity (AKS: a federated token file) or the VM's managed identity.
//!
//! Shared Key signs each request (HMAC-SHA256 of its method, standard headers, `x-ms-*` headers
//! and resource); a signature lives 15 minutes, so each attempt of a request is signed anew.
//! Entra tokens are kept until a minute before they expire.

use crate::storage::StorageError;
use crate::storage::http::{Shared, encode, form, post_form, request};
use base64::Engine as _;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use std::time::Duration;

/// Scope of a token for the Blob service.
const SCOPE: &str = "https://storage.azure.com/.default";
const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
const AUTHORITY: &str = "https://login.microsoftonline.com";

/// The well-known account and key of Azure's storage emulators (documented, not a secret).
pub const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
pub const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How requests are authorized.
pub enum Credentials {
    SharedKey {
        account: String,
        key: Vec<u8>,
    },
    /// A SAS token: query parameters added to every URL.
    Sas(String),
    ClientSecret {
        tenant: String,
        client_id: String,
        secret: String,
    },
    Workload {
        tenant: String,
        client_id: String,
        token_file: std::path::PathBuf,
    },
    ManagedIdentity {
        client_id: Option<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::SharedKey { .. } => "account key",
            Credentials::Sas(_) => "SAS token",
            Credentials::ClientSecret { .. } => "client secret",
            Credentials::Workload { .. } => "workload identity",
            Credentials::ManagedIdentity { .. } => "managed identity",
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
    /// An account key as the portal shows it (base64).
    pub fn shared_key(account: &str, key: &str) -> Result<Credentials, StorageError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|e| bad(account, format!("the account key is not base64: {e}")))?;
        Ok(Credentials::SharedKey {
            account: account.to_owned(),
            key,
        })
    }

    /// For an account whose key was not given: `AZURE_STORAGE_KEY`, `AZURE_STORAGE_SAS_TOKEN`,
    /// else an Entra token ([`Credentials::entra_chain`]): a client secret (`AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), workload identity (`AZURE_FEDERATED_TOKEN_FILE`),
    /// else the managed identity of the VM or pod (`AZURE_CLIENT_ID` picks a user-assigned one).
    pub fn default_chain(account: &str) -> Result<Credentials, StorageError> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        if let Some(key) = var("AZURE_STORAGE_KEY") {
            return Credentials::shared_key(account, &key);
        }
        if let Some(sas) = var("AZURE_STORAGE_SAS_TOKEN") {
            return Ok(Credentials::Sas(sas.trim_start_matches('?').to_owned()));
        }
        Ok(Credentials::entra_chain())
    }

    /// Azure's `DefaultAzureCredential` order for a Microsoft Entra token: a client secret from
    /// the environment, workload identity, else the managed identity.
    pub fn entra_chain() -> Credentials {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let (tenant, client_id) = (var("AZURE_TENANT_ID"), var("AZURE_CLIENT_ID"));
        if let (Some(tenant), Some(client_id), Some(secret)) =
            (&tenant, &client_id, var("AZURE_CLIENT_SECRET"))
        {
            return Credentials::ClientSecret {
                tenant: tenant.clone(),
                client_id: client_id.clone(),
                secret,
            };
        }
        if let (Some(tenant), Some(client_id), Some(file)) =
            (&tenant, &client_id, var("AZURE_FEDERATED_TOKEN_FILE"))
        {
            return Credentials::Workload {
                tenant: tenant.clone(),
                client_id: client_id.clone(),
                token_file: file.into(),
            };
        }
        Credentials::ManagedIdentity { client_id }
    }
}

/// A connection string's parts (`AccountName=…;AccountKey=…;BlobEndpoint=…`), as the portal and
/// `az storage account show-connection-string` give it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConnectionString {
    pub account: Option<String>,
    pub key: Option<String>,
    pub sas: Option<String>,
    /// The Blob service's URL, from `BlobEndpoint` or from the protocol and suffix.
    pub blob_endpoint: Option<String>,
}

impl ConnectionString {
    pub fn parse(text: &str) -> Result<ConnectionString, StorageError> {
        let mut fields = std::collections::HashMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                bad(
                    "AZURE_STORAGE_CONNECTION_STRING",
                    format!("{part:?} is not Name=value"),
                )
            })?;
            fields.insert(k.to_ascii_lowercase(), v.to_owned());
        }
        if fields.get("usedevelopmentstorage").map(String::as_str) == Some("true") {
            return Ok(ConnectionString {
                account: Some(EMULATOR_ACCOUNT.into()),
                key: Some(EMULATOR_KEY.into()),
                sas: None,
                blob_endpoint: Some(format!("http://127.0.0.1:10000/{EMULATOR_ACCOUNT}")),
            });
        }
        let account = fields.get("accountname").cloned();
        let blob_endpoint = fields.get("blobendpoint").cloned().or_else(|| {
            let protocol = fields
                .get("defaultendpointsprotocol")
                .map_or("https", String::as_str);
            let suffix = fields
                .get("endpointsuffix")
                .map_or("core.windows.net", String::as_str);
            account
                .as_ref()
                .map(|a| format!("{protocol}://{a}.blob.{suffix}"))
        });
        Ok(ConnectionString {
            account,
            key: fields.get("accountkey").cloned(),
            sas: fields.get("sharedaccesssignature").cloned(),
            blob_endpoint: blob_endpoint.map(|e| e.trim_end_matches('/').to_owned()),
        })
    }
}

/// Signs and authorizes requests.
#[derive(Debug)]
pub struct Signer {
    credentials: Credentials,
    cached: crate::storage::remote::TokenCache,
}

/// The parts of a request that Shared Key signs.
pub struct ToSign<'a> {
    pub method: &'a str,
    /// The URL's path as sent (percent-encoded), starting with `/`.
    pub path: &'a str,
    /// The query's pairs, decoded.
    pub query: &'a [(&'a str, String)],
    /// Every header the request carries, names in lower case.
    pub headers: &'a [(&'a str, String)],
}

impl Signer {
    pub fn new(credentials: Credentials) -> Signer {
        Signer {
            credentials,
            cached: Default::default(),
        }
    }

    /// A SAS token to add to every URL, if that is how requests are authorized.
    pub fn sas(&self) -> Option<&str> {
        match &self.credentials {
            Credentials::Sas(s) => Some(s),
            _ => None,
        }
    }

    /// The bearer token's header for token credentials (fetched or cached); `None` otherwise.
    pub async fn bearer(&self, http: &Shared) -> Result<Option<String>, StorageError> {
        if matches!(
            self.credentials,
            Credentials::SharedKey { .. } | Credentials::Sas(_)
        ) {
            return Ok(None);
        }
        self.cached.bearer(|| self.fetch(http)).await.map(Some)
    }

    /// The `Authorization` header of a Shared Key request; `None` for other credentials.
    pub fn shared_key(&self, r: &ToSign) -> Option<String> {
        let Credentials::SharedKey { account, key } = &self.credentials else {
            return None;
        };
        let text = string_to_sign(account, r);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        mac.update(text.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        Some(format!("SharedKey {account}:{sig}"))
    }

    async fn fetch(&self, http: &Shared) -> Result<(String, Duration), StorageError> {
        let authority = std::env::var("AZURE_AUTHORITY_HOST")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| AUTHORITY.to_owned());
        let authority = authority.trim_end_matches('/');
        let (url, reply) = match &self.credentials {
            Credentials::SharedKey { .. } | Credentials::Sas(_) => {
                unreachable!("checked by the caller")
            }
            Credentials::ClientSecret {
                tenant,
                client_id,
                secret,
            } => {
                let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
                let body = form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("scope", SCOPE),
                ]);
                let reply = post_form(http, &url, body).await?;
                (url, reply)
            }
            Credentials::Workload {
                tenant,
                client_id,
                token_file,
            } => {
                let assertion = std::fs::read_to_string(token_file).map_err(|e| {
                    bad(
                        &token_file.display().to_string(),
                        format!("cannot read the federated token: {e}"),
                    )
                })?;
                let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
                let body = form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.trim()),
                    ("scope", SCOPE),
                ]);
                let reply = post_form(http, &url, body).await?;
                (url, reply)
            }
            Credentials::ManagedIdentity { client_id } => {
                let mut url = format!(
                    "{IMDS}?api-version=2018-02-01&resource={}",
                    encode("https://storage.azure.com/")
                );
                if let Some(id) = client_id {
                    url.push_str(&format!("&client_id={}", encode(id)));
                }
                let get = || {
                    request(
                        http::Method::GET,
                        &url,
                        &[("metadata", "true".into())],
                        Bytes::new(),
                    )
                };
                // Off Azure nothing answers: one short try, not the retries of a request.
                let none = |why: String| {
                    bad(
                        IMDS,
                        format!(
                            "no Azure credentials: no account key (accountkey, AZURE_STORAGE_KEY, \
                             AZURE_STORAGE_CONNECTION_STRING), no SAS (AZURE_STORAGE_SAS_TOKEN), no \
                             client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), \
                             and no managed identity answered ({why})"
                        ),
                    )
                };
                let reply =
                    match tokio::time::timeout(Duration::from_secs(5), http.send(IMDS, &get)).await
                    {
                        Err(_) => return Err(none("no answer within 5 s".into())),
                        Ok(Err(e)) => return Err(none(e.to_string())),
                        Ok(Ok(r)) if !r.ok() => {
                            return Err(none(format!("HTTP {}", r.status)));
                        }
                        Ok(Ok(r)) => r,
                    };
                (url, reply)
            }
        };
        if !reply.ok() {
            return Err(reply.error(&url));
        }
        let v: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| bad(&url, format!("not a token response: {e}")))?;
        let token = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| bad(&url, "no access_token in the response"))?;
        // Entra sends a number, IMDS a string.
        let secs = v
            .get("expires_in")
            .and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok()))
            .unwrap_or(300);
        Ok((token.to_owned(), Duration::from_secs(secs)))
    }
}

/// Shared Key's string to sign (service version 2015-02-21 and later: a `Content-Length` of 0 is
/// empty).
fn string_to_sign(account: &str, r: &ToSign) -> String {
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    };
    let length = match header("content-length") {
        "0" => "",
        l => l,
    };
    let mut out = String::new();
    for part in [
        r.method,
        header("content-encoding"),
        header("content-language"),
        length,
        header("content-md5"),
        header("content-type"),
        "", // Date: x-ms-date is sent instead
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    ] {
        out.push_str(part);
        out.push('\n');
    }
    let mut ms: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| {
            let folded = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (k.to_ascii_lowercase(), folded)
        })
        .collect();
    ms.sort();
    for (k, v) in ms {
        out.push_str(&format!("{k}:{v}\n"));
    }
    out.push('/');
    out.push_str(account);
    out.push_str(r.path);
    let mut query: Vec<(String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    query.sort();
    let mut i = 0;
    while i < query.len() {
        let name = query[i].0.clone();
        let values: Vec<&str> = query[i..]
            .iter()
            .take_while(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        i += values.len();
        out.push_str(&format!("\n{name}:{}", values.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_as_the_portal_and_the_emulator_give_them() {
        let c = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(c.account.as_deref(), Some("acct"));
        assert_eq!(c.key.as_deref(), Some("a2V5"));
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("https://acct.blob.core.chinacloudapi.cn")
        );
        let c = ConnectionString::parse(
            "AccountName=a;AccountKey=k;BlobEndpoint=http://127.0.0.1:1/a/;",
        )
        .unwrap();
        assert_eq!(c.blob_endpoint.as_deref(), Some("http://127.0.0.1:1/a"));
        let c = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(c.account.as_deref(), Some(EMULATOR_ACCOUNT));
        let e = ConnectionString::parse("AccountName").unwrap_err();
        assert!(e.to_string().contains("AccountName"), "{e}");
    }

    #[test]
    fn the_string_to_sign_takes_headers_and_query_in_canonical_order() {
        let headers = [
            ("x-ms-version", "2021-08-06".to_owned()),
            ("x-ms-date", "Fri, 04 Dec 2026 00:00:00 GMT".to_owned()),
            ("content-length", "0".to_owned()),
            ("if-none-match", "*".to_owned()),
        ];
        let query = [
            ("restype", "container".to_owned()),
            ("comp", "list".to_owned()),
            ("prefix", "docker/".to_owned()),
        ];
        let text = string_to_sign(
            "acct",
            &ToSign {
                method: "GET",
                path: "/c",
                query: &query,
                headers: &headers,
            },
        );
        assert_eq!(
            text,
            "GET\n\n\n\n\n\n\n\n\n*\n\n\nx-ms-date:Fri, 04 Dec 2026 00:00:00 GMT\n\
             x-ms-version:2021-08-06\n/acct/c\ncomp:list\nprefix:docker/\nrestype:container"
        );
        let s = Signer::new(Credentials::shared_key("acct", "a2V5").unwrap());
        let auth = s
            .shared_key(&ToSign {
                method: "GET",
                path: "/c",
                query: &query,
                headers: &headers,
            })
            .unwrap();
        assert!(auth.starts_with("SharedKey acct:"), "{auth}");
        assert!(Credentials::shared_key("acct", "not base64!").is_err());
    }
}
