//! The rustls client configuration: ring as the crypto provider (it
//! cross-compiles to ARM and MIPS with only a C compiler, unlike aws-lc-rs),
//! safe default protocol versions (TLS 1.2 and 1.3), and the trust roots.
//!
//! Roots: the Mozilla set compiled in (`webpki-roots`) plus, optionally, the
//! operator's own CA from a PEM file or bytes. Camera firmware rarely ships
//! a maintained `/etc/ssl/certs`, so reading the system store would make
//! trust depend on the firmware image; compiled-in roots behave the same on
//! every device and are updated with libivcs. A self-hosted cloud with a
//! private CA can turn the public roots off and trust only its own CA.
//! There is deliberately no switch to disable verification.

use anyhow::{Context, Result, anyhow, bail};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;

/// Builds the client configuration; fails on an unusable CA PEM or when no
/// root would be trusted at all.
pub(crate) fn client_config(public_roots: bool, ca_pem: Option<&[u8]>) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    if public_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(pem) = ca_pem {
        let mut added = 0usize;
        for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let cert = cert.map_err(|e| anyhow!("CA PEM: block {i}: {e}"))?;
            roots.add(cert).map_err(|e| {
                anyhow!("CA PEM: certificate {i} is not a usable trust anchor: {e}")
            })?;
            added += 1;
        }
        if added == 0 {
            bail!("CA PEM: no CERTIFICATE block found");
        }
    }
    if roots.is_empty() {
        bail!("no trust roots: keep the public roots or give a CA PEM");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::client_config;

    #[test]
    fn public_roots_alone_are_enough() {
        assert!(client_config(true, None).is_ok());
    }

    #[test]
    fn no_roots_at_all_is_refused() {
        let e = client_config(false, None).unwrap_err().to_string();
        assert!(e.contains("no trust roots"), "{e}");
    }

    #[test]
    fn a_pem_without_certificates_is_refused() {
        let e = client_config(true, Some(b"not a pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
    }
}
