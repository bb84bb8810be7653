//! Secrets at rest: AES-256-GCM (the `aes-gcm` crate) under a master key from configuration.
//!
//! A sealed value is stored as text: `v1.<key id>.<base64(nonce || ciphertext)>`. The key id
//! beside the ciphertext says which key sealed it, so that `vouch rotate-key` can find values
//! sealed under an old key and re-seal them, and so that decryption picks the right key while
//! a rotation is under way. Each value is bound, as associated data, to the place it is
//! stored (`table.column:row-id`): a ciphertext copied to another row does not open.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const ENVELOPE_VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

/// Why a master key from configuration was refused. Never includes the key itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("is not valid base64; generate a key with `vouch rotate-key --generate`")]
    NotBase64,
    #[error(
        "must be 32 bytes (44 base64 characters), found {0} bytes; generate a key with `vouch rotate-key --generate`"
    )]
    WrongLength(usize),
}

/// Why a sealed value could not be opened. Never includes plaintext or key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the stored value is not a sealed secret")]
    Malformed,
    #[error(
        "the stored value was sealed under key {0}, which is not configured; add it to encryption.previous_keys"
    )]
    UnknownKey(String),
    #[error(
        "the stored value does not decrypt under key {0}: wrong key, tampered data, or moved to another row"
    )]
    Undecryptable(String),
}

/// A 256-bit key. `Debug` does not show it.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: Key<Aes256Gcm>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn parse(encoded: &SecretString) -> Result<MasterKey, KeyError> {
        let bytes = Zeroizing::new(
            BASE64
                .decode(encoded.expose_secret().trim())
                .map_err(|_| KeyError::NotBase64)?,
        );
        if bytes.len() != 32 {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        // The id is a fingerprint, so operators never have to name keys, and a key can be
        // recognised across instances without revealing it.
        let digest = Sha256::new()
            .chain_update(b"vouch master key id\0")
            .chain_update(&bytes[..])
            .finalize();
        Ok(MasterKey {
            id: format!("k{}", hex::encode(&digest[..4])),
            key: *Key::<Aes256Gcm>::from_slice(&bytes),
        })
    }

    /// A fresh random key, base64-encoded, for `vouch rotate-key --generate` and the demo.
    pub fn generate_encoded() -> SecretString {
        let key = Aes256Gcm::generate_key(OsRng);
        SecretString::from(BASE64.encode(key))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The active key plus any previous keys still needed to open old values.
#[derive(Clone, Debug)]
pub struct Keyring {
    active: MasterKey,
    all: HashMap<String, MasterKey>,
}

impl Keyring {
    pub fn new(active: MasterKey, previous: impl IntoIterator<Item = MasterKey>) -> Keyring {
        let mut all: HashMap<String, MasterKey> =
            previous.into_iter().map(|k| (k.id.clone(), k)).collect();
        all.insert(active.id.clone(), active.clone());
        Keyring { active, all }
    }

    pub fn active_key_id(&self) -> &str {
        &self.active.id
    }

    /// Encrypts `plaintext` for storage at `place` (see [`SealedPlace`]).
    pub fn seal(&self, place: &SealedPlace, plaintext: &str) -> String {
        let cipher = Aes256Gcm::new(&self.active.key);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = place.associated_data();
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            // AES-GCM encryption fails only for inputs of many gigabytes.
            .expect("AES-GCM encryption of a bounded value");
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        format!(
            "{ENVELOPE_VERSION}.{}.{}",
            self.active.id,
            BASE64.encode(blob)
        )
    }

    pub fn open(&self, place: &SealedPlace, sealed: &str) -> Result<SecretString, OpenError> {
        let envelope = Envelope::parse(sealed)?;
        let key = self
            .all
            .get(envelope.key_id)
            .ok_or_else(|| OpenError::UnknownKey(envelope.key_id.to_owned()))?;
        let blob = BASE64
            .decode(envelope.payload)
            .map_err(|_| OpenError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let aad = place.associated_data();
        let plaintext = Zeroizing::new(
            Aes256Gcm::new(&key.key)
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: aad.as_bytes(),
                    },
                )
                .map_err(|_| OpenError::Undecryptable(envelope.key_id.to_owned()))?,
        );
        let text = String::from_utf8(plaintext.to_vec()).map_err(|_| OpenError::Malformed)?;
        Ok(SecretString::from(text))
    }

    /// A keyed digest (HMAC-SHA256 under the active key) of `data` for `purpose`: for short
    /// secrets such as 6-digit codes, whose plain hash could be reversed by trying them all.
    pub fn mac_hex(&self, purpose: &str, data: &str) -> String {
        format!(
            "{}.{}",
            self.active.id,
            hex::encode(mac(&self.active, purpose, data))
        )
    }

    /// Checks a digest from [`Keyring::mac_hex`] in constant time.
    pub fn verify_mac(&self, purpose: &str, data: &str, expected: &str) -> bool {
        let Some((key_id, digest_hex)) = expected.split_once('.') else {
            return false;
        };
        let (Some(key), Ok(digest)) = (self.all.get(key_id), hex::decode(digest_hex)) else {
            return false;
        };
        let mut verifier = <HmacSha256 as hmac::Mac>::new_from_slice(key.key.as_slice())
            .expect("HMAC takes keys of any length");
        hmac::Mac::update(&mut verifier, purpose.as_bytes());
        hmac::Mac::update(&mut verifier, &[0]);
        hmac::Mac::update(&mut verifier, data.as_bytes());
        hmac::Mac::verify_slice(verifier, &digest).is_ok()
    }

    /// True when `sealed` was sealed under a key other than the active one.
    pub fn needs_reseal(&self, sealed: &str) -> Result<bool, OpenError> {
        Ok(Envelope::parse(sealed)?.key_id != self.active.id)
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

fn mac(key: &MasterKey, purpose: &str, data: &str) -> Vec<u8> {
    let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(key.key.as_slice())
        .expect("HMAC takes keys of any length");
    hmac::Mac::update(&mut mac, purpose.as_bytes());
    hmac::Mac::update(&mut mac, &[0]);
    hmac::Mac::update(&mut mac, data.as_bytes());
    hmac::Mac::finalize(mac).into_bytes().to_vec()
}

struct Envelope<'a> {
    key_id: &'a str,
    payload: &'a str,
}

impl<'a> Envelope<'a> {
    fn parse(sealed: &'a str) -> Result<Envelope<'a>, OpenError> {
        let mut parts = sealed.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(ENVELOPE_VERSION), Some(key_id), Some(payload)) if !key_id.is_empty() => {
                Ok(Envelope { key_id, payload })
            }
            _ => Err(OpenError::Malformed),
        }
    }
}

/// Where a sealed value lives: binding the ciphertext to its table, column and row means a
/// value cannot be swapped into another row (another MSP's connection, say) and still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPlace {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: String,
}

impl SealedPlace {
    pub fn new(table: &'static str, column: &'static str, row_id: impl fmt::Display) -> Self {
        SealedPlace {
            table,
            column,
            row_id: row_id.to_string(),
        }
    }

    fn associated_data(&self) -> String {
        format!("{}.{}:{}", self.table, self.column, self.row_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> (Keyring, MasterKey) {
        let key = MasterKey::parse(&MasterKey::generate_encoded()).unwrap();
        (Keyring::new(key.clone(), []), key)
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let (ring, _) = keyring();
        let place = SealedPlace::new("t", "c", "row-1");
        let sealed = ring.seal(&place, "correct horse battery staple");
        assert!(!sealed.contains("horse"));
        assert!(sealed.starts_with(&format!("v1.{}.", ring.active_key_id())));
        let opened = ring.open(&place, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "correct horse battery staple");
    }

    #[test]
    fn a_value_moved_to_another_row_does_not_open() {
        let (ring, _) = keyring();
        let sealed = ring.seal(&SealedPlace::new("t", "c", "row-1"), "secret");
        let err = ring
            .open(&SealedPlace::new("t", "c", "row-2"), &sealed)
            .unwrap_err();
        assert!(matches!(err, OpenError::Undecryptable(_)));
    }

    #[test]
    fn old_values_open_with_a_previous_key_and_are_flagged_for_reseal() {
        let (old_ring, old_key) = keyring();
        let place = SealedPlace::new("t", "c", "1");
        let sealed = old_ring.seal(&place, "secret");
        let new_key = MasterKey::parse(&MasterKey::generate_encoded()).unwrap();
        let without_old = Keyring::new(new_key.clone(), []);
        assert_eq!(
            without_old.open(&place, &sealed).unwrap_err(),
            OpenError::UnknownKey(old_key.id().to_owned())
        );
        let rotating = Keyring::new(new_key, [old_key]);
        assert!(rotating.needs_reseal(&sealed).unwrap());
        assert_eq!(
            rotating.open(&place, &sealed).unwrap().expose_secret(),
            "secret"
        );
        let resealed = rotating.seal(&place, "secret");
        assert!(!rotating.needs_reseal(&resealed).unwrap());
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let short = SecretString::from(BASE64.encode([7u8; 16]));
        assert_eq!(
            MasterKey::parse(&short).unwrap_err(),
            KeyError::WrongLength(16)
        );
        let garbage = SecretString::from("not base64 !!!".to_owned());
        let err = MasterKey::parse(&garbage).unwrap_err();
        assert!(!err.to_string().contains("not base64 !!!"));
    }

    #[test]
    fn macs_verify_only_with_the_same_purpose_and_data() {
        let (ring, _) = keyring();
        let digest = ring.mac_hex("sms_code", "salt:123456");
        assert!(ring.verify_mac("sms_code", "salt:123456", &digest));
        assert!(!ring.verify_mac("sms_code", "salt:123457", &digest));
        assert!(!ring.verify_mac("other", "salt:123456", &digest));
        assert!(!ring.verify_mac("sms_code", "salt:123456", "garbage"));
    }

    #[test]
    fn tampered_or_malformed_values_are_refused() {
        let (ring, _) = keyring();
        let place = SealedPlace::new("t", "c", "1");
        let sealed = ring.seal(&place, "secret");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(ring.open(&place, &tampered).is_err());
        assert_eq!(
            ring.open(&place, "plain text").unwrap_err(),
            OpenError::Malformed
        );
    }
}
