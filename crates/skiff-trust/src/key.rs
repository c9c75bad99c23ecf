//! Keys in cosign's format, so that a key pair made by `skiff key generate` works with cosign
//! and skopeo, and theirs with skiff.
//!
//! - `cosign.pub`: the ECDSA P-256 public key as a PKIX `PUBLIC KEY` PEM.
//! - `cosign.key`: the PKCS#8 private key, encrypted as cosign does (its
//!   `go-securesystemslib/encrypted` package): a key derived from the password by scrypt
//!   (N=32768, r=8, p=1, a 32-byte random salt) seals the key with NaCl secretbox
//!   (XSalsa20-Poly1305, a 24-byte random nonce); the JSON document
//!   `{"kdf":{…},"cipher":{…},"ciphertext":…}` (byte strings in standard base64, as Go
//!   encodes them) is the body of an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (older cosign wrote
//!   `ENCRYPTED COSIGN PRIVATE KEY`; both are read).

use crate::error::KeyError;
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// The PEM label cosign writes today.
pub const PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label of cosign before 2.0, still read.
const OLD_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// cosign's scrypt parameters (`encrypted.Encrypt`'s defaults): N = 2^15, r = 8, p = 1, which
/// costs 32 MiB and ~0.1 s per derivation.
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 1;
/// A key file is data: one asking for more work than this is refused rather than obeyed
/// (N = 2^20 with r = 8 is 1 GiB of memory; cosign's default is 2^15).
const MAX_LOG_N: u8 = 20;
const MAX_R: u32 = 32;
const MAX_P: u32 = 16;
/// A cosign.key is ~650 bytes; anything past this is not one.
pub const MAX_KEY_FILE: u64 = 64 << 10;

/// A private key that can sign.
pub struct PrivateKey(SigningKey);

/// A public key that verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// A freshly generated pair, ready to be written out.
pub struct KeyPair {
    /// `cosign.key`: the encrypted private key.
    pub private_pem: String,
    /// `cosign.pub`.
    pub public_pem: String,
}

#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// Generate a P-256 key pair; the private half encrypted with `password`.
pub fn generate(password: &[u8]) -> Result<KeyPair, KeyError> {
    let key = SigningKey::random(&mut OsRng);
    let public_pem = PublicKey(*key.verifying_key()).to_pem()?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    let private_pem = encrypt(der.as_bytes(), password)?;
    Ok(KeyPair {
        private_pem,
        public_pem,
    })
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], KeyError> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| KeyError::Malformed(format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|e| KeyError::Malformed(format!("scrypt: {e}")))?;
    Ok(out)
}

fn encrypt(plain: &[u8], password: &[u8]) -> Result<String, KeyError> {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let key = derive(password, &salt, LOG_N, R, P)?;
    let ciphertext = XSalsa20Poly1305::new((&key).into())
        .encrypt((&nonce).into(), plain)
        .map_err(|_| KeyError::Encode("secretbox sealing failed".into()))?;
    let doc = Encrypted {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1 << LOG_N,
                r: R,
                p: P,
            },
            salt: salt.to_vec(),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    let json = serde_json::to_vec(&doc).map_err(|e| KeyError::Encode(e.to_string()))?;
    pem::encode_string(PRIVATE_KEY_LABEL, pem::LineEnding::LF, &json)
        .map_err(|e| KeyError::Encode(e.to_string()))
}

impl PrivateKey {
    /// Read an encrypted cosign private key. A wrong password and a damaged file are told
    /// apart as far as the format allows: secretbox's tag fails for both, so the message names both.
    pub fn from_pem(text: &[u8], password: &[u8]) -> Result<PrivateKey, KeyError> {
        let (label, body) = pem::decode_vec(text)
            .map_err(|e| KeyError::Malformed(format!("not a PEM file: {e}")))?;
        if label != PRIVATE_KEY_LABEL && label != OLD_PRIVATE_KEY_LABEL {
            return Err(KeyError::Malformed(format!(
                "a PEM {label:?}, not an encrypted cosign private key ({PRIVATE_KEY_LABEL:?})"
            )));
        }
        let doc: Encrypted = serde_json::from_slice(&body)
            .map_err(|e| KeyError::Malformed(format!("its encrypted document: {e}")))?;
        if doc.kdf.name != "scrypt" || doc.cipher.name != "nacl/secretbox" {
            return Err(KeyError::Malformed(format!(
                "encrypted with {}/{}; only scrypt/nacl/secretbox (cosign's) is read",
                doc.kdf.name, doc.cipher.name
            )));
        }
        let KdfParams { n, r, p } = doc.kdf.params;
        let log_n = n
            .checked_ilog2()
            .filter(|l| 1u64 << l == n)
            .unwrap_or(u32::MAX);
        if log_n > MAX_LOG_N as u32 || r == 0 || r > MAX_R || p == 0 || p > MAX_P {
            return Err(KeyError::Malformed(format!(
                "scrypt parameters N={n} r={r} p={p} are out of bounds (N a power of two up to \
                 2^{MAX_LOG_N}, r up to {MAX_R}, p up to {MAX_P}; cosign writes N=32768 r=8 p=1)"
            )));
        }
        if doc.cipher.nonce.len() != 24 {
            return Err(KeyError::Malformed(
                "the secretbox nonce is not 24 bytes".into(),
            ));
        }
        let key = derive(password, &doc.kdf.salt, log_n as u8, r, p)?;
        let plain = XSalsa20Poly1305::new((&key).into())
            .decrypt(
                doc.cipher.nonce.as_slice().into(),
                doc.ciphertext.as_slice(),
            )
            .map_err(|_| KeyError::WrongPassword)?;
        let key = SigningKey::from_pkcs8_der(&plain).map_err(|e| {
            KeyError::Malformed(format!(
                "the decrypted key is not an ECDSA P-256 PKCS#8 key ({e}); skiff signs with \
                 P-256 only, cosign's default"
            ))
        })?;
        Ok(PrivateKey(key))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// Sign `payload` (ECDSA over its SHA-256); the DER signature in standard base64, as
    /// cosign puts it in the `dev.cosignproject.cosign/signature` annotation.
    pub fn sign(&self, payload: &[u8]) -> String {
        let sig: Signature = self.0.sign(payload);
        let der: DerSignature = sig.to_der();
        base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
    }
}

impl PublicKey {
    /// A PKIX `PUBLIC KEY` PEM (cosign.pub).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(text.trim())
            .map(PublicKey)
            .map_err(|e| {
                KeyError::Malformed(format!(
                    "not an ECDSA P-256 public key in PEM ({e}); expected cosign.pub's format"
                ))
            })
    }

    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(pem::LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Check a base64 DER signature over `payload`. False for any failure: bad base64, bad DER,
    /// a signature by another key or over other bytes.
    pub fn verifies(&self, payload: &[u8], signature_b64: &str) -> bool {
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
            return false;
        };
        let Ok(sig) = Signature::from_der(&der) else {
            return false;
        };
        self.0.verify(payload, &sig).is_ok()
    }

    /// The key's fingerprint for messages: sha256 of its DER, first 16 hex digits.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let der = self
            .0
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        let h = sha2::Sha256::digest(&der);
        h.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_and_signs() {
        let pair = generate(b"pw").unwrap();
        assert!(pair
            .private_pem
            .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let key = PrivateKey::from_pem(pair.private_pem.as_bytes(), b"pw").unwrap();
        let public = PublicKey::from_pem(&pair.public_pem).unwrap();
        assert_eq!(key.public(), public);
        let sig = key.sign(b"payload");
        assert!(public.verifies(b"payload", &sig));
        assert!(!public.verifies(b"payload!", &sig));
        assert!(!public.verifies(b"payload", "not base64"));
    }

    #[test]
    fn wrong_password_is_named() {
        let pair = generate(b"right").unwrap();
        let err = PrivateKey::from_pem(pair.private_pem.as_bytes(), b"wrong")
            .err()
            .unwrap();
        assert!(matches!(err, KeyError::WrongPassword), "{err}");
    }

    #[test]
    fn hostile_scrypt_parameters_are_refused_before_any_work() {
        let doc = serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1u64 << 40, "r": 8, "p": 1}, "salt": ""},
            "cipher": {"name": "nacl/secretbox", "nonce": base64::engine::general_purpose::STANDARD.encode([0u8; 24])},
            "ciphertext": ""
        });
        let pem = pem::encode_string(
            PRIVATE_KEY_LABEL,
            pem::LineEnding::LF,
            &serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
        let err = PrivateKey::from_pem(pem.as_bytes(), b"").err().unwrap();
        assert!(err.to_string().contains("out of bounds"), "{err}");
    }
}
