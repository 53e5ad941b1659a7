//! The HTTP client of `ivcs cloud` commands that talk to a running service
//! (`--url`): ureq with rustls, HTTP errors as answers, and optionally one
//! more trusted CA for a self-hosted service's own certificate.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// An agent trusting the built-in roots, or the certificates of `ca`.
pub fn agent(ca: Option<&Path>) -> Result<ureq::Agent> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            bail!("{}: no certificate", ca.display());
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .build()
        .into())
}
