//! PKCS#12 export (`--p12`): the private key, its certificate and the CA in one
//! password-protected file, encrypted with PBES2 (PBKDF2-HMAC-SHA256 + AES-256-CBC) and
//! MAC'd with HMAC-SHA256, which OpenSSL 3, Java and Windows read without legacy providers.

use std::path::Path;

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::KeyPair;

use super::Error;

/// Fails for a password no bundle may have (the empty one), so a command can refuse before it
/// generates anything.
pub fn check_password(path: &Path, password: &str) -> Result<(), Error> {
    if password.is_empty() {
        return Err(Error::P12 {
            path: path.to_path_buf(),
            reason: "the password must not be empty".into(),
        });
    }
    Ok(())
}

/// Builds a PKCS#12 bundle for `key` + `cert_der` + `ca_der`, protected by `password`.
pub fn build(
    path: &Path,
    key: &KeyPair,
    cert_der: &[u8],
    ca_der: &[u8],
    password: &str,
    alias: &str,
) -> Result<Vec<u8>, Error> {
    check_password(path, password)?;
    let fail = |reason: String| Error::P12 { path: path.to_path_buf(), reason };
    let leaf = Certificate::from_der(cert_der).map_err(|e| fail(e.to_string()))?;
    let ca = Certificate::from_der(ca_der).map_err(|e| fail(e.to_string()))?;
    // regkit-generated keys are PKCS#8, which is what a PKCS#12 key bag holds.
    let private = PrivateKey::from_der(key.serialized_der()).map_err(|e| fail(e.to_string()))?;
    let local_id: Vec<u8> = rand::random::<[u8; 20]>().to_vec();
    let chain = PrivateKeyChain::new(local_id, private, [leaf, ca]);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::keys::KeyType;

    #[test]
    fn round_trips_through_p12_keystore() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.lan".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        let bytes = build(Path::new("x.p12"), &key, &der, &der, "pw", "site").unwrap();
        let store =
            KeyStore::from_pkcs12(&bytes, "pw", p12_keystore::Pkcs12ImportPolicy::Relaxed).unwrap();
        let (_, chain) = store.private_key_chain().unwrap();
        assert_eq!(chain.certs()[0].as_der(), der.as_slice());
        assert!(
            KeyStore::from_pkcs12(&bytes, "wrong", p12_keystore::Pkcs12ImportPolicy::Relaxed)
                .is_err()
        );
        assert!(build(Path::new("x.p12"), &key, &der, &der, "", "site").is_err());
    }
}
