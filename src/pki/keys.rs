//! Private keys: the key types regkit generates, and loading a PEM key written by regkit or
//! by openssl (PKCS#8 `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
//! Keys regkit writes are always PKCS#8.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rcgen::{KeyPair, PublicKeyData, RsaKeySize};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::Error;
use crate::files;

/// A key algorithm and size regkit can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256 (the default: small, fast, accepted everywhere).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048-bit with SHA-256.
    Rsa2048,
    /// RSA 3072-bit with SHA-256.
    Rsa3072,
    /// RSA 4096-bit with SHA-256.
    Rsa4096,
}

impl KeyType {
    /// Every key type, in the order `--help` lists them.
    pub const ALL: [KeyType; 5] = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// True for the RSA types (leaf certificates then also get keyEncipherment).
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// Generates a new key of this type.
    pub fn generate(self) -> Result<KeyPair, Error> {
        let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
        Ok(match self {
            KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?,
            KeyType::Rsa2048 => rsa(RsaKeySize::_2048)?,
            KeyType::Rsa3072 => rsa(RsaKeySize::_3072)?,
            KeyType::Rsa4096 => rsa(RsaKeySize::_4096)?,
        })
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownKeyType(s.to_string()))
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True when `key` is an RSA key.
pub fn is_rsa_key(key: &KeyPair) -> bool {
    let alg = key.algorithm();
    alg == &rcgen::PKCS_RSA_SHA256
        || alg == &rcgen::PKCS_RSA_SHA384
        || alg == &rcgen::PKCS_RSA_SHA512
}

/// Loads a PEM private key (PKCS#8, PKCS#1 or SEC1) from `path`.
pub fn load_key(path: &Path) -> Result<KeyPair, Error> {
    let pem = files::read(path)?;
    let bad = |reason: &str| Error::BadKey { path: path.to_path_buf(), reason: reason.into() };
    let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            if String::from_utf8_lossy(&pem).contains("ENCRYPTED") {
                bad("the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)")
            } else {
                bad("no PEM private key found")
            }
        }
        other => bad(&other.to_string()),
    })?;
    KeyPair::try_from(&der)
        .map_err(|_| bad("unsupported key (regkit reads RSA and ECDSA P-256/P-384/P-521 keys)"))
}

/// True when `key`'s public half equals the raw subject public key bits of a certificate.
pub fn key_matches(key: &KeyPair, spki_raw_key: &[u8]) -> bool {
    key.der_bytes() == spki_raw_key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_type_names_round_trip() {
        for k in KeyType::ALL {
            assert_eq!(k.name().parse::<KeyType>().unwrap(), k);
        }
        let err = "dsa-1024".parse::<KeyType>().unwrap_err().to_string();
        assert!(err.contains("unknown key type \"dsa-1024\""), "{err}");
    }

    #[test]
    fn loads_generated_pkcs8_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        let key = KeyType::EcdsaP256.generate().unwrap();
        std::fs::write(&p, key.serialize_pem()).unwrap();
        let back = load_key(&p).unwrap();
        assert!(key_matches(&back, key.der_bytes()));
        std::fs::write(&p, "not a key").unwrap();
        let err = load_key(&p).unwrap_err().to_string();
        assert!(err.contains("no PEM private key found"), "{err}");
    }
}
