//! Secrets at rest, and the keys Vouch derives from its master key.
//!
//! # One key per purpose
//!
//! The master key from configuration is never used as a key itself. HKDF-SHA256 (RFC 5869,
//! the `hkdf` crate) expands it into one 256-bit key per purpose, each under its own `info`
//! label:
//!
//! - sealing secrets at rest (AES-256-GCM, the `aes-gcm` crate);
//! - one-time code digests (HMAC-SHA256, [`MacPurpose::SmsCode`]);
//! - pod tokens (HMAC-SHA256, [`MacPurpose::PodToken`]).
//!
//! So the AES key is never an HMAC key, and a digest made for one purpose never verifies for
//! another: a pod token's MAC is no valid code digest, and the other way round. The master
//! key's id (a fingerprint, see [`MasterKey::parse`]) names the whole family of keys.
//!
//! # Sealed values
//!
//! A sealed value is stored as text: `v2.<key id>.<base64(nonce || ciphertext)>`. The key id
//! beside the ciphertext says which master key sealed it, so that `vouch rotate-key` can find
//! values sealed under an old key and re-seal them, and so that decryption picks the right key
//! while a rotation is under way. Each value is bound, as associated data, to the place it is
//! stored (`table.column:row-id`): a ciphertext copied to another row does not open.
//!
//! # Values from before per-purpose keys
//!
//! Earlier versions sealed `v1.<key id>.<...>` values with the master key itself, and keyed
//! their HMACs with it too. What stays readable is decided here, in `EnvelopeVersion`:
//!
//! - `v1` sealed values (PSA credentials, Microsoft secrets, shares and messages in an
//!   existing database, the demo's under `./vouch-data/` included) still open: the master key
//!   is kept, as `MasterKey::legacy_v1_seal`, only to decrypt them. Nothing is sealed as
//!   `v1` any more. [`Keyring::needs_reseal`] reports them even under the active key, so
//!   running `vouch rotate-key` once after upgrading, with the same master key, re-seals them
//!   as `v2`.
//! - Digests made under the old scheme are not accepted. Accepting them would keep the master
//!   key in use as an HMAC key, and they are short-lived anyway: an SMS code sent in the
//!   minutes before the upgrade is refused as incorrect (the technician sends another), and
//!   a pod opened before it asks for the ticket to be reloaded.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// HKDF `info` label of the sealing key. Changing a label changes the key: existing values
/// would no longer open or verify.
const SEAL_KEY_INFO: &[u8] = b"vouch/v2/seal/aes-256-gcm";

/// A 256-bit key; zeroed when dropped.
type KeyBytes = Zeroizing<[u8; KEY_LEN]>;

/// The format of a sealed value, its first dot-separated field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvelopeVersion {
    /// Sealed under the master key itself, before per-purpose keys. Opened, never written.
    V1,
    /// Sealed under the HKDF-derived sealing key.
    V2,
}

impl EnvelopeVersion {
    /// What [`Keyring::seal`] writes.
    const CURRENT: EnvelopeVersion = EnvelopeVersion::V2;

    fn parse(marker: &str) -> Option<EnvelopeVersion> {
        match marker {
            "v1" => Some(EnvelopeVersion::V1),
            "v2" => Some(EnvelopeVersion::V2),
            _ => None,
        }
    }

    fn marker(self) -> &'static str {
        match self {
            EnvelopeVersion::V1 => "v1",
            EnvelopeVersion::V2 => "v2",
        }
    }
}

/// What a keyed digest ([`Keyring::mac_hex`]) is for. Each purpose has its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacPurpose {
    /// One-time codes sent by SMS: short secrets whose plain hash could be reversed by trying
    /// them all.
    SmsCode,
    /// Pod tokens (see `psa::pod_token`).
    PodToken,
    /// Offers to change a user's default sign-in method (see `core::method_fix`).
    MethodFix,
}

impl MacPurpose {
    /// HKDF `info` label of this purpose's key. Changing a label changes the key.
    fn key_info(self) -> &'static [u8] {
        match self {
            MacPurpose::SmsCode => b"vouch/v2/mac/hmac-sha256/sms-code",
            MacPurpose::PodToken => b"vouch/v2/mac/hmac-sha256/pod-token",
            MacPurpose::MethodFix => b"vouch/v2/mac/hmac-sha256/method-fix",
        }
    }
}

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

/// A master key from configuration and the keys derived from it. `Debug` shows only the id.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    seal: KeyBytes,
    sms_code_mac: KeyBytes,
    pod_token_mac: KeyBytes,
    method_fix_mac: KeyBytes,
    /// The configured key itself, kept only to open `v1` values (see the module doc).
    legacy_v1_seal: KeyBytes,
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
        let master: KeyBytes = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::WrongLength(bytes.len()))?,
        );
        // The id is a fingerprint, so operators never have to name keys, and a key can be
        // recognised across instances without revealing it. It is the same as before
        // per-purpose keys, so `v1` values still find their key.
        let digest = Sha256::new()
            .chain_update(b"vouch master key id\0")
            .chain_update(&master[..])
            .finalize();
        // No salt: the master key is already 32 uniformly random bytes, which is the case
        // where RFC 5869 (section 3.1) lets HKDF do without; the `info` labels alone keep
        // the purposes apart.
        let hkdf = Hkdf::<Sha256>::new(None, &master[..]);
        let derive = |info: &[u8]| {
            let mut okm: KeyBytes = Zeroizing::new([0; KEY_LEN]);
            hkdf.expand(info, &mut okm[..])
                // HKDF-SHA256 refuses only outputs longer than 8160 bytes.
                .expect("HKDF-SHA256 expands to 32 bytes");
            okm
        };
        Ok(MasterKey {
            id: format!("k{}", hex::encode(&digest[..4])),
            seal: derive(SEAL_KEY_INFO),
            sms_code_mac: derive(MacPurpose::SmsCode.key_info()),
            pod_token_mac: derive(MacPurpose::PodToken.key_info()),
            method_fix_mac: derive(MacPurpose::MethodFix.key_info()),
            legacy_v1_seal: master,
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

    fn cipher(&self, version: EnvelopeVersion) -> Aes256Gcm {
        let key = match version {
            EnvelopeVersion::V1 => &self.legacy_v1_seal,
            EnvelopeVersion::V2 => &self.seal,
        };
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key[..]))
    }

    fn mac_key(&self, purpose: MacPurpose) -> &[u8] {
        match purpose {
            MacPurpose::SmsCode => &self.sms_code_mac[..],
            MacPurpose::PodToken => &self.pod_token_mac[..],
            MacPurpose::MethodFix => &self.method_fix_mac[..],
        }
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
        let version = EnvelopeVersion::CURRENT;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = place.associated_data();
        let ciphertext = self
            .active
            .cipher(version)
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
            "{}.{}.{}",
            version.marker(),
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
            key.cipher(envelope.version)
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

    /// A keyed digest of `data` (HMAC-SHA256 under the active master key's key for
    /// `purpose`), as `<key id>.<hex>`, so that digests made before a rotation still verify.
    pub fn mac_hex(&self, purpose: MacPurpose, data: &str) -> String {
        let mut mac = hmac_for(&self.active, purpose);
        hmac::Mac::update(&mut mac, data.as_bytes());
        format!(
            "{}.{}",
            self.active.id,
            hex::encode(hmac::Mac::finalize(mac).into_bytes())
        )
    }

    /// Checks a digest from [`Keyring::mac_hex`] for the same `purpose`, in constant time.
    pub fn verify_mac(&self, purpose: MacPurpose, data: &str, expected: &str) -> bool {
        let Some((key_id, digest_hex)) = expected.split_once('.') else {
            return false;
        };
        // Only the form `mac_hex` writes: a token with its hex in capitals is another string
        // carrying the same claims, and a token is meant to have exactly one spelling.
        if digest_hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return false;
        }
        let (Some(key), Ok(digest)) = (self.all.get(key_id), hex::decode(digest_hex)) else {
            return false;
        };
        let mut mac = hmac_for(key, purpose);
        hmac::Mac::update(&mut mac, data.as_bytes());
        hmac::Mac::verify_slice(mac, &digest).is_ok()
    }

    /// True when `sealed` should be sealed again: under a key other than the active one, or
    /// in an older format.
    pub fn needs_reseal(&self, sealed: &str) -> Result<bool, OpenError> {
        let envelope = Envelope::parse(sealed)?;
        Ok(envelope.key_id != self.active.id || envelope.version != EnvelopeVersion::CURRENT)
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac_for(key: &MasterKey, purpose: MacPurpose) -> HmacSha256 {
    <HmacSha256 as hmac::Mac>::new_from_slice(key.mac_key(purpose))
        .expect("HMAC takes keys of any length")
}

struct Envelope<'a> {
    version: EnvelopeVersion,
    key_id: &'a str,
    payload: &'a str,
}

impl<'a> Envelope<'a> {
    fn parse(sealed: &'a str) -> Result<Envelope<'a>, OpenError> {
        let mut parts = sealed.splitn(3, '.');
        match (
            parts.next().and_then(EnvelopeVersion::parse),
            parts.next(),
            parts.next(),
        ) {
            (Some(version), Some(key_id), Some(payload)) if !key_id.is_empty() => Ok(Envelope {
                version,
                key_id,
                payload,
            }),
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

    /// The bytes 0, 1, ... 31: the master key of the frozen values below.
    const FIXTURE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const FIXTURE_KEY_ID: &str = "kde8b72b9";
    const FIXTURE_PLAINTEXT: &str = "sealed before per-purpose keys";

    fn fixture_place() -> SealedPlace {
        SealedPlace::new(
            "psa_connections",
            "credentials_sealed",
            "00000000-0000-0000-0000-000000000001",
        )
    }

    fn fixture_keyring() -> Keyring {
        let key = MasterKey::parse(&SecretString::from(FIXTURE_KEY.to_owned())).unwrap();
        assert_eq!(key.id(), FIXTURE_KEY_ID);
        Keyring::new(key, [])
    }

    /// Sealed at `fixture_place()` under `FIXTURE_KEY` by Vouch before per-purpose keys
    /// (commit a486abe), the format of every database written until then.
    const FROZEN_V1_SEALED: &str = "v1.kde8b72b9.7MEIRuLUKiPNFd0mqOnxKqdGNy0Hx7xlGm51jtkbEk1PwKUlfwdqtc2KfW7oP3Tq4l02v2/tCqEd+A==";
    /// `mac_hex("sms_code", "salt:123456")` and `mac_hex("pod_token", "payload")` of that
    /// version, keyed with the master key itself.
    const FROZEN_V1_CODE_MAC: &str =
        "kde8b72b9.fdf94949b98a405845c5de541dd838d9f0ce555b0daaad84a0614be36545a17d";
    const FROZEN_V1_POD_MAC: &str =
        "kde8b72b9.f9798765f05ae6ecc164786967526501aa0cf488bcd6bf77740d0977cd8d2dd4";

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let (ring, _) = keyring();
        let place = SealedPlace::new("t", "c", "row-1");
        let sealed = ring.seal(&place, "correct horse battery staple");
        assert!(!sealed.contains("horse"));
        assert!(sealed.starts_with(&format!("v2.{}.", ring.active_key_id())));
        let opened = ring.open(&place, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "correct horse battery staple");
        assert!(!ring.needs_reseal(&sealed).unwrap());
    }

    #[test]
    fn every_purpose_has_its_own_key_and_none_is_the_master_key() {
        let key = fixture_keyring().active;
        let keys: [(&str, &[u8]); 4] = [
            ("master", &key.legacy_v1_seal[..]),
            ("seal", &key.seal[..]),
            ("sms code", key.mac_key(MacPurpose::SmsCode)),
            ("pod token", key.mac_key(MacPurpose::PodToken)),
        ];
        for (i, (name, bytes)) in keys.iter().enumerate() {
            assert_eq!(bytes.len(), KEY_LEN, "{name}");
            for (other, other_bytes) in &keys[i + 1..] {
                assert_ne!(bytes, other_bytes, "{name} and {other} keys are the same");
            }
        }
        // Derivation is deterministic: another instance with the same key gets the same keys.
        let again = fixture_keyring().active;
        assert_eq!(&again.seal[..], &key.seal[..]);
        assert_eq!(
            again.mac_key(MacPurpose::PodToken),
            key.mac_key(MacPurpose::PodToken)
        );
    }

    #[test]
    fn derived_keys_are_stable_across_releases() {
        // Pinned outputs (the digest checked independently against RFC 5869 HKDF-SHA256): a
        // changed HKDF label or input would make every stored `v2` value unreadable and
        // every code and pod token in flight invalid.
        let ring = fixture_keyring();
        assert_eq!(
            ring.mac_hex(MacPurpose::SmsCode, "salt:123456"),
            "kde8b72b9.9bb5e4471b87796487bdc97f319f5308ae2a6e89bad4a26223a47b67d92f4287"
        );
        assert_eq!(
            ring.open(&fixture_place(), FROZEN_V2_SEALED)
                .unwrap()
                .expose_secret(),
            FIXTURE_PLAINTEXT
        );
    }

    /// Sealed at `fixture_place()` under `FIXTURE_KEY` with per-purpose keys.
    const FROZEN_V2_SEALED: &str = "v2.kde8b72b9.GEXf7Oc+5uOZaLS2ka6Y5qAT4SLp4uwy/xV3Cz/OGuvWaxbYf+/b1lYJcCMQkw4zVmMJTOlnfqNxiw==";

    #[test]
    fn a_mac_verifies_only_for_its_own_purpose_and_data() {
        let (ring, _) = keyring();
        let digest = ring.mac_hex(MacPurpose::SmsCode, "salt:123456");
        assert!(ring.verify_mac(MacPurpose::SmsCode, "salt:123456", &digest));
        assert!(!ring.verify_mac(MacPurpose::SmsCode, "salt:123457", &digest));
        assert!(!ring.verify_mac(MacPurpose::PodToken, "salt:123456", &digest));
        let pod = ring.mac_hex(MacPurpose::PodToken, "payload");
        assert!(ring.verify_mac(MacPurpose::PodToken, "payload", &pod));
        assert!(!ring.verify_mac(MacPurpose::SmsCode, "payload", &pod));
        assert!(!ring.verify_mac(MacPurpose::SmsCode, "salt:123456", "garbage"));
        // Nor is the HMAC keyed with the sealing key or the master key itself.
        let key = &ring.active;
        for not_the_key in [&key.seal[..], &key.legacy_v1_seal[..]] {
            let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(not_the_key).unwrap();
            hmac::Mac::update(&mut mac, b"salt:123456");
            let forged = format!(
                "{}.{}",
                key.id(),
                hex::encode(hmac::Mac::finalize(mac).into_bytes())
            );
            assert!(!ring.verify_mac(MacPurpose::SmsCode, "salt:123456", &forged));
        }
    }

    #[test]
    fn macs_made_before_a_rotation_verify_with_the_previous_key() {
        let (old_ring, old_key) = keyring();
        let digest = old_ring.mac_hex(MacPurpose::SmsCode, "salt:123456");
        let (new_only, new_key) = keyring();
        assert!(!new_only.verify_mac(MacPurpose::SmsCode, "salt:123456", &digest));
        let rotating = Keyring::new(new_key, [old_key]);
        assert!(rotating.verify_mac(MacPurpose::SmsCode, "salt:123456", &digest));
        assert!(
            rotating
                .mac_hex(MacPurpose::SmsCode, "salt:123456")
                .starts_with(rotating.active_key_id())
        );
    }

    #[test]
    fn v1_values_still_open_and_are_flagged_for_reseal_under_the_same_key() {
        let ring = fixture_keyring();
        let place = fixture_place();
        assert_eq!(
            ring.open(&place, FROZEN_V1_SEALED).unwrap().expose_secret(),
            FIXTURE_PLAINTEXT
        );
        // Sealed under the active key, yet in the old format: `vouch rotate-key` re-seals it.
        assert!(ring.needs_reseal(FROZEN_V1_SEALED).unwrap());
        let resealed = ring.seal(&place, FIXTURE_PLAINTEXT);
        assert!(resealed.starts_with("v2."));
        assert!(!ring.needs_reseal(&resealed).unwrap());
        // A v1 value keeps its row binding, and does not open under another key.
        assert!(matches!(
            ring.open(
                &SealedPlace::new("psa_connections", "credentials_sealed", "2"),
                FROZEN_V1_SEALED
            ),
            Err(OpenError::Undecryptable(_))
        ));
        let (other, _) = keyring();
        assert_eq!(
            other.open(&place, FROZEN_V1_SEALED).unwrap_err(),
            OpenError::UnknownKey(FIXTURE_KEY_ID.to_owned())
        );
        // The marker picks the key: the same bytes labelled v2 do not open.
        let relabelled = FROZEN_V1_SEALED.replacen("v1.", "v2.", 1);
        assert!(matches!(
            ring.open(&place, &relabelled),
            Err(OpenError::Undecryptable(_))
        ));
    }

    #[test]
    fn digests_from_before_per_purpose_keys_are_refused() {
        let ring = fixture_keyring();
        for purpose in [MacPurpose::SmsCode, MacPurpose::PodToken] {
            assert!(!ring.verify_mac(purpose, "salt:123456", FROZEN_V1_CODE_MAC));
            assert!(!ring.verify_mac(purpose, "payload", FROZEN_V1_POD_MAC));
        }
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
        let debug = format!("{:?}", fixture_keyring());
        assert!(debug.contains(FIXTURE_KEY_ID));
        assert!(!debug.contains("AAECAwQF"));
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
        let unknown_version = sealed.replacen("v2.", "v3.", 1);
        assert_eq!(
            ring.open(&place, &unknown_version).unwrap_err(),
            OpenError::Malformed
        );
        assert_eq!(
            ring.needs_reseal(&unknown_version).unwrap_err(),
            OpenError::Malformed
        );
    }
}
