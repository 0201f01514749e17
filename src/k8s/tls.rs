//! The `kubernetes.io/tls` Secret and the check kubectl makes before writing one: the private
//! key must be the one whose public half is in the (first) certificate. The certificate is
//! parsed with x509-parser, the key with rcgen (PKCS#8, PKCS#1 RSA or SEC1 EC), and the
//! subject public keys are compared. The files go into the Secret byte for byte.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::secret::{SourceFile, TYPE_TLS};
use super::{Error, Secret};

/// A `kubernetes.io/tls` Secret with `tls.crt` = `cert` and `tls.key` = `key` (PEM), after
/// checking that the key belongs to the first certificate in `cert`.
pub fn tls(
    name: &str,
    namespace: Option<&str>,
    cert: &SourceFile,
    key: &SourceFile,
) -> Result<Secret, Error> {
    check_pair(cert, key)?;
    Secret::new(
        name,
        namespace,
        TYPE_TLS,
        vec![
            ("tls.crt".to_string(), cert.bytes.clone()),
            ("tls.key".to_string(), key.bytes.clone()),
        ],
    )
}

/// Fails unless `key` holds the private key of the first certificate in `cert`.
pub fn check_pair(cert: &SourceFile, key: &SourceFile) -> Result<(), Error> {
    let cert_err = |why: String| Error::Certificate { source_name: cert.label.clone(), why };
    let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(&cert.bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(cert_err("no CERTIFICATE block found (expected a PEM certificate)".into()));
    }
    let mut public_keys = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        let (_, parsed) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| cert_err(format!("certificate #{} cannot be parsed: {e}", i + 1)))?;
        public_keys.push((
            parsed.subject().to_string(),
            parsed.public_key().subject_public_key.data.to_vec(),
        ));
    }

    let key_public = private_key_public_half(key)?;
    let (subject, first) = &public_keys[0];
    if *first == key_public {
        return Ok(());
    }
    let mut detail = format!(
        "the key's public half differs from the public key of the first certificate \
         (subject \"{subject}\")"
    );
    if let Some(i) = public_keys.iter().position(|(_, pk)| *pk == key_public) {
        detail.push_str(&format!(
            "; it matches certificate #{} in the file (subject \"{}\"): put the server \
             certificate first, then its chain",
            i + 1,
            public_keys[i].0
        ));
    } else {
        detail.push_str("; use the key that was generated with this certificate");
    }
    Err(Error::KeyMismatch { cert: cert.label.clone(), key: key.label.clone(), detail })
}

/// The raw public key (as in a certificate's subjectPublicKey bit string) of a PEM key.
fn private_key_public_half(key: &SourceFile) -> Result<Vec<u8>, Error> {
    let key_err = |why: String| Error::Key { source_name: key.label.clone(), why };
    let der = match PrivateKeyDer::from_pem_slice(&key.bytes) {
        Ok(der) => der,
        Err(_)
            if contains(&key.bytes, b"ENCRYPTED PRIVATE KEY")
                || contains(&key.bytes, b"Proc-Type: 4,ENCRYPTED") =>
        {
            return Err(key_err(
                "the private key is encrypted; Kubernetes needs it in the clear (openssl pkey \
                 -in KEY -out plain.key)"
                    .into(),
            ));
        }
        Err(e) => return Err(key_err(format!("no PEM private key found ({e})"))),
    };
    let pair = rcgen::KeyPair::try_from(&der)
        .map_err(|e| key_err(format!("unsupported or damaged private key ({e})")))?;
    Ok(pair.public_key_raw().to_vec())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SourceFile, SourceFile) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["reg.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            SourceFile { label: "c.pem".into(), bytes: cert.pem().into_bytes() },
            SourceFile { label: "k.pem".into(), bytes: key.serialize_pem().into_bytes() },
        )
    }

    #[test]
    fn matching_pair_gives_a_tls_secret() {
        let (cert, key) = pair();
        let s = tls("reg-tls", None, &cert, &key).unwrap();
        assert_eq!(s.secret_type(), "kubernetes.io/tls");
        assert_eq!(s.data()["tls.crt"], cert.bytes);
        assert_eq!(s.data()["tls.key"], key.bytes);
    }

    #[test]
    fn mismatch_and_order_are_explained() {
        let (cert_a, _) = pair();
        let (cert_b, key_b) = pair();
        let err = tls("x", None, &cert_a, &key_b).unwrap_err().to_string();
        assert!(err.contains("does not match the certificate c.pem"), "{err}");
        let mut chain = cert_a.clone();
        chain.bytes.extend_from_slice(&cert_b.bytes);
        let err = tls("x", None, &chain, &key_b).unwrap_err().to_string();
        assert!(err.contains("matches certificate #2"), "{err}");
    }

    #[test]
    fn garbage_is_named() {
        let (cert, key) = pair();
        let junk = SourceFile { label: "junk".into(), bytes: b"hello".to_vec() };
        let err = tls("x", None, &junk, &key).unwrap_err().to_string();
        assert!(err.starts_with("junk: no CERTIFICATE"), "{err}");
        let err = tls("x", None, &cert, &junk).unwrap_err().to_string();
        assert!(err.starts_with("junk: no PEM private key"), "{err}");
    }
}
