//! Properties (proptest) of the pure parts every request leans on: phone normalisation, the
//! signed embed loads of HaloPSA and Autotask, and pod tokens. Each property runs a bounded
//! number of cases (see `cases`), so the suite's time does not grow with it.

use proptest::prelude::*;
use vouch::psa::PsaError;
use vouch::psa::pod_token::{self, TokenError};
use vouch::psa::signing;
use vouch::sms::E164;
use vouch::store::crypto::{Keyring, MacPurpose, MasterKey};

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn keyring() -> Keyring {
    Keyring::new(
        MasterKey::parse(&MasterKey::generate_encoded()).expect("a fresh key parses"),
        [],
    )
}

/// A valid mobile number of a few numbering plans, as (region, national significant number).
fn phone() -> impl Strategy<Value = (&'static str, &'static str, String)> {
    prop_oneof![
        // US/CA: NXX-NXX-XXXX (555-01xx is reserved for fiction and valid).
        (0u32..100).prop_map(|n| ("US", "1", format!("206555{:04}", 100 + n))),
        // UK mobiles: 07400 000000 to 07400 999999.
        (0u32..1_000_000).prop_map(|n| ("GB", "44", format!("7400{n:06}"))),
        // Germany mobiles: 151 then 8 digits.
        (10_000_000u64..99_999_999).prop_map(|n| ("DE", "49", format!("151{n}"))),
    ]
}

/// How people write a number: separators anywhere between digits.
fn written(digits: &str, separators: &[u8]) -> String {
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        out.push(digit);
        match separators.get(i).copied().unwrap_or(0) % 6 {
            1 => out.push(' '),
            2 => out.push('-'),
            3 => out.push('.'),
            _ => {}
        }
    }
    out
}

proptest! {
    #![proptest_config(cases(96))]

    /// However a valid number is written (international, or national in its own region,
    /// with spaces, dashes or dots), it normalises to one E.164 form, and that form parses
    /// back to itself from any default region.
    #[test]
    fn a_phone_number_normalises_to_one_e164_form(
        (region, country_code, national) in phone(),
        separators in proptest::collection::vec(any::<u8>(), 0..16),
        other_region in prop_oneof![Just("US"), Just("GB"), Just("DE"), Just("FR")],
    ) {
        let e164 = format!("+{country_code}{national}");
        let international = format!("+{country_code} {}", written(&national, &separators));
        let parsed = E164::parse(&international, other_region).expect("international form");
        prop_assert_eq!(parsed.as_str(), e164.as_str());
        let again = E164::parse(parsed.as_str(), other_region).expect("E.164 form");
        prop_assert_eq!(again.as_str(), e164.as_str());
        // Nationally written in its own region (the UK and Germany add a trunk 0).
        let national_form = match region {
            "US" => written(&national, &separators),
            _ => format!("0{}", written(&national, &separators)),
        };
        let parsed = E164::parse(&national_form, region).expect("national form");
        prop_assert_eq!(parsed.as_str(), e164.as_str());
    }

    /// The masked form shows the country code and the last two digits, and no other digit.
    #[test]
    fn a_masked_number_shows_only_its_country_code_and_last_two_digits(
        (_region, country_code, national) in phone(),
    ) {
        let parsed = E164::parse(&format!("+{country_code}{national}"), "US").unwrap();
        let masked = parsed.masked();
        let prefix = format!("+{country_code} ");
        prop_assert!(masked.starts_with(&prefix), "{}", masked);
        let shown: String = masked[prefix.len()..].chars().filter(char::is_ascii_digit).collect();
        prop_assert_eq!(shown, national[national.len() - 2..].to_owned());
        prop_assert_eq!(
            masked.chars().filter(|c| *c == '•').count(),
            national.len() - 2
        );
    }

    /// No input makes the parser panic, and whatever it accepts is E.164 (a `+`, then at
    /// most 15 digits).
    #[test]
    fn any_text_parses_or_is_refused_without_panicking(raw in "\\PC{0,40}", region in "[A-Za-z]{0,3}") {
        if let Ok(number) = E164::parse(&raw, &region) {
            let digits = &number.as_str()[1..];
            prop_assert!(number.as_str().starts_with('+'));
            prop_assert!(digits.len() <= 15 && digits.chars().all(|c| c.is_ascii_digit()));
        }
    }
}

/// Parameters of a signed load: names and values of any printable text, `sig` left out
/// (it is the signature's own name).
fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..8).prop_map(|pairs| {
        pairs
            .into_iter()
            .filter(|(name, _)| {
                name != signing::SIGNATURE_PARAM && name != signing::TIMESTAMP_PARAM
            })
            .collect()
    })
}

const NOW: i64 = 1_800_000_000;

fn signed(mut params: Vec<(String, String)>, secret: &str) -> Vec<(String, String)> {
    params.push((signing::TIMESTAMP_PARAM.into(), NOW.to_string()));
    let sig = signing::sign(&params, secret);
    params.push((signing::SIGNATURE_PARAM.into(), sig));
    params
}

proptest! {
    #![proptest_config(cases(256))]

    /// A load signed with the secret verifies in any order of its parameters.
    #[test]
    fn a_signed_load_verifies_in_any_order(
        params in params(),
        secret in "\\PC{1,40}",
        rotation in any::<usize>(),
    ) {
        let mut load = signed(params, &secret);
        let len = load.len();
        load.rotate_left(rotation % len);
        load.reverse();
        prop_assert!(signing::verify(&load, &secret, 300, NOW).is_ok());
    }

    /// Changing any one value, adding a parameter, or signing with another secret is refused.
    #[test]
    fn an_altered_load_is_refused(
        params in params(),
        secret in "\\PC{1,40}",
        other_secret in "\\PC{1,40}",
        which in any::<usize>(),
        extra in "\\PC{1,6}",
    ) {
        let load = signed(params, &secret);
        let signed_values = load.len() - 1; // all but `sig`
        let mut altered = load.clone();
        altered[which % signed_values].1.push_str(&extra);
        prop_assert!(matches!(
            signing::verify(&altered, &secret, 300, NOW),
            Err(PsaError::BadSignature)
        ));
        let mut added = load.clone();
        added.push(("zz_added".into(), extra.clone()));
        prop_assert!(matches!(
            signing::verify(&added, &secret, 300, NOW),
            Err(PsaError::BadSignature)
        ));
        if other_secret != secret {
            prop_assert!(matches!(
                signing::verify(&load, &other_secret, 300, NOW),
                Err(PsaError::BadSignature)
            ));
        }
    }

    /// A signature outside the age window is refused as stale, not as bad.
    #[test]
    fn an_old_load_is_stale(params in params(), secret in "\\PC{1,40}", age in 301i64..1_000_000) {
        let load = signed(params, &secret);
        prop_assert!(matches!(
            signing::verify(&load, &secret, 300, NOW + age),
            Err(PsaError::Stale)
        ));
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// A pod token carries its claims back unchanged, whatever the ticket text.
    #[test]
    fn a_pod_token_round_trips_its_claims(
        ticket in "\\PC{0,40}",
        ids in any::<[u128; 3]>(),
    ) {
        let ring = keyring();
        let [msp, connection, technician] = ids.map(uuid::Uuid::from_u128);
        let token = pod_token::issue(&ring, msp, connection, technician, &ticket);
        let claims = pod_token::verify(&ring, &token).expect("its own token");
        prop_assert_eq!(claims.msp, msp);
        prop_assert_eq!(
            claims.subject,
            pod_token::PodSubject::Ticket { connection, technician, ticket }
        );
    }

    /// Changing any one character of a token makes it invalid, and a token from another
    /// master key, or a MAC of the same claims for another purpose, is refused.
    #[test]
    fn an_altered_or_foreign_pod_token_is_refused(
        ticket in "[0-9]{1,8}",
        position in any::<usize>(),
        replacement in proptest::char::range('-', 'z'),
    ) {
        let ring = keyring();
        let nil = uuid::Uuid::nil();
        let token = pod_token::issue(&ring, nil, nil, nil, &ticket);
        let mut chars: Vec<char> = token.chars().collect();
        let at = position % chars.len();
        prop_assume!(chars[at] != replacement);
        chars[at] = replacement;
        let altered: String = chars.into_iter().collect();
        prop_assert_eq!(pod_token::verify(&ring, &altered), Err(TokenError::Invalid));

        let foreign = pod_token::issue(&keyring(), nil, nil, nil, &ticket);
        prop_assert_eq!(pod_token::verify(&ring, &foreign), Err(TokenError::Invalid));

        let payload = token.split_once('.').unwrap().0;
        let other_purpose = format!("{payload}.{}", ring.mac_hex(MacPurpose::SmsCode, payload));
        prop_assert_eq!(pod_token::verify(&ring, &other_purpose), Err(TokenError::Invalid));
    }
}
