//! E.164 phone numbers: parsed and validated with the `phonenumber` crate (Google's
//! libphonenumber metadata), so that Vouch only ever hands the SMS provider a number that
//! exists in the numbering plan of its country.
//!
//! A phone number is personal data: errors say what was wrong without repeating the input,
//! `Debug` shows the masked form, and only `Display` / `as_str` / `Serialize` give the full
//! number (for the provider and for the user's own screen).

use std::fmt;

use phonenumber::country::{self, Source};
use phonenumber::{Mode, ParseError};
use serde::{Serialize, Serializer};

/// Longer input is refused before parsing: the longest real number with generous formatting
/// is around 30 characters, and nothing is gained by feeding a parser kilobytes.
const MAX_INPUT_CHARS: usize = 64;

/// Region strings are configuration, not personal data, but they are echoed in errors: a
/// mistyped value should not turn an error message into a wall of text.
const MAX_REGION_CHARS_SHOWN: usize = 16;

/// What replaces a hidden digit in [`E164::masked`].
const MASK: char = '•';

/// A phone number in E.164 form, such as `+12065550101`.
///
/// Only [`E164::parse`] makes one, so holding an `E164` means the number passed
/// libphonenumber's validity check for its country.
#[derive(Clone)]
pub struct E164 {
    /// `+` and digits only, e.g. `+12065550101`.
    e164: String,
    /// The country calling code, e.g. `1`: shown by [`E164::masked`].
    country_code: u16,
    /// The international format, e.g. `+1 206-555-0101`: its grouping is kept by
    /// [`E164::masked`], which is why it is computed once here rather than re-parsed.
    international: String,
}

/// Why a string is not a phone number Vouch can send an SMS to.
///
/// The messages name the problem, never the number itself, so they are safe to show, return
/// from the API, or log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but whitespace.
    #[error("no phone number was given")]
    Empty,
    /// Far longer than any phone number.
    #[error("too long to be a phone number")]
    TooLong,
    /// The default region is not an ISO 3166 code known to the numbering metadata.
    #[error(
        "unknown region {region:?} for phone numbers: use a two-letter ISO 3166 code such as \"US\" or \"GB\""
    )]
    UnknownRegion { region: String },
    /// No phone number could be read from the input at all.
    #[error("not a phone number")]
    NotANumber,
    /// Letters or symbols other than the usual separators (spaces, `+ - . ( ) [ ] /`).
    #[error(
        "not a phone number: it contains characters other than digits, spaces and + - . ( ) [ ] /"
    )]
    UnexpectedCharacters,
    /// An extension (`x123`, `ext. 5`): SMS cannot be sent to one.
    #[error("the number has an extension, and an extension cannot receive SMS")]
    HasExtension,
    /// The `+NN` prefix is not a country calling code.
    #[error("not a phone number: the country code does not exist")]
    InvalidCountryCode,
    /// Too few digits for any phone number.
    #[error("too short to be a phone number")]
    TooShort,
    /// Written without a country code and not valid in the default region.
    #[error("not a valid phone number for region {region} (add the country code, e.g. +44)")]
    InvalidForRegion { region: String },
    /// Written with a country code but not valid in that country's numbering plan.
    #[error("not a valid phone number for country code +{country_code}")]
    InvalidForCountryCode { country_code: u16 },
}

/// Reads `raw` with `phonenumber`, under the rules of the country the number belongs to.
///
/// phonenumber 0.3 strips the *default region's* national prefix even from a number that
/// carries another country's code: read in region US (national prefix `1`), the German
/// mobile `+49 176 12345678` came out as `+49 7612345678`, a landline of someone else. So a
/// number written with its country code (`+49…`, or `011 49…` with the region's
/// international prefix) is read a second time without a default region, as `+` and its
/// digits, which makes the crate use that country's own metadata. A number written
/// nationally keeps the default region's reading, which is right for it.
fn read_number(region: country::Id, raw: &str) -> Result<phonenumber::PhoneNumber, ParseError> {
    let number = phonenumber::parse(Some(region), raw)?;
    if number.code().source() == Source::Default || number.extension().is_some() {
        return Ok(number);
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let international = if raw.starts_with('+') {
        Some(digits.as_str())
    } else {
        phonenumber::metadata::DATABASE
            .by_id(region.as_ref())
            .and_then(|meta| meta.international_prefix())
            .and_then(|idd| idd.find(&digits))
            .filter(|found| found.start() == 0)
            .map(|found| &digits[found.end()..])
    };
    match international {
        Some(rest) => phonenumber::parse(None, format!("+{rest}")),
        None => Ok(number),
    }
}

impl E164 {
    /// Parses `raw` (E.164, international such as `+44 20 7946 0958`, or national in
    /// `default_region` such as `(206) 555-0101` for `"US"`). Spaces, dashes, dots, brackets
    /// and slashes are ignored; the region is an ISO 3166 code, case-insensitive.
    pub fn parse(raw: &str, default_region: &str) -> Result<E164, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        if raw.chars().count() > MAX_INPUT_CHARS {
            return Err(PhoneError::TooLong);
        }
        let region_code = default_region.trim().to_ascii_uppercase();
        let region: country::Id = region_code.parse().map_err(|_| PhoneError::UnknownRegion {
            region: default_region
                .trim()
                .chars()
                .take(MAX_REGION_CHARS_SHOWN)
                .collect(),
        })?;

        let number = read_number(region, raw).map_err(|err| match err {
            ParseError::InvalidCountryCode => PhoneError::InvalidCountryCode,
            ParseError::TooShortAfterIdd | ParseError::TooShortNsn => PhoneError::TooShort,
            ParseError::TooLong => PhoneError::TooLong,
            ParseError::NoNumber | ParseError::MalformedInteger(_) => PhoneError::NotANumber,
        })?;
        // Checked before the character rule so that "x123" gets the helpful message.
        if number.extension().is_some() {
            return Err(PhoneError::HasExtension);
        }
        // libphonenumber reads numbers out of free text ("call 206 555 0101") and turns
        // letters into digits ("1-800-FLOWERS"); an SMS to a number nobody typed is worse
        // than asking for the number again.
        if !raw.chars().all(is_allowed_char) {
            return Err(PhoneError::UnexpectedCharacters);
        }
        if !number.is_valid() {
            return Err(match number.code().source() {
                // Written nationally: the default region decided how it was read.
                Source::Default => PhoneError::InvalidForRegion {
                    region: region_code,
                },
                Source::Plus | Source::Idd | Source::Number => PhoneError::InvalidForCountryCode {
                    country_code: number.code().value(),
                },
            });
        }
        Ok(E164 {
            e164: number.format().mode(Mode::E164).to_string(),
            country_code: number.code().value(),
            international: number.format().mode(Mode::International).to_string(),
        })
    }

    /// The E.164 form, e.g. `+12065550101`: what the SMS provider needs.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// For people: the country code and the last two digits, every other digit replaced by
    /// `•`, grouped as the country writes it, e.g. `+1 ••• ••• ••01`, `+44 •• •••• ••58`.
    pub fn masked(&self) -> String {
        let prefix = format!("+{}", self.country_code);
        // The international format is "+CC " followed by the grouped national number; should
        // a future metadata version write it otherwise, fall back to the ungrouped digits.
        let grouped = self
            .international
            .strip_prefix(&prefix)
            .filter(|rest| rest.starts_with(' '))
            .or_else(|| self.e164.strip_prefix(&prefix))
            .unwrap_or("");
        let total_digits = grouped.chars().filter(char::is_ascii_digit).count();
        let mut out = String::with_capacity(prefix.len() + 1 + grouped.len() * 3);
        out.push_str(&prefix);
        out.push(' ');
        let mut seen_digits = 0;
        let mut pending_space = false;
        for c in grouped.chars() {
            if c.is_ascii_digit() {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                seen_digits += 1;
                // Only the last two digits are shown.
                out.push(if seen_digits + 2 > total_digits {
                    c
                } else {
                    MASK
                });
            } else if seen_digits > 0 {
                // Dashes, brackets and spaces all become one space, as in the example above.
                pending_space = true;
            }
        }
        out
    }
}

/// Digits, whitespace (including the no-break space of copied text) and the separators people
/// and address books use, Unicode dashes included.
fn is_allowed_char(c: char) -> bool {
    c.is_ascii_digit()
        || c.is_whitespace()
        || matches!(
            c,
            '+' | '-' | '.' | '(' | ')' | '[' | ']' | '/' | '\u{2010}'..='\u{2015}' | '\u{2212}'
        )
}

impl PartialEq for E164 {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}

impl Eq for E164 {}

impl std::hash::Hash for E164 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.e164.hash(state);
    }
}

/// The full E.164 number: for the provider and the user's own screen, never for logs.
impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// Masked, because `Debug` is what ends up in logs (`?message`, panics, `dbg!`).
impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("E164").field(&self.masked()).finish()
    }
}

/// Serialised as the E.164 string, e.g. `"+12065550101"`.
impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(raw: &str) -> Result<E164, PhoneError> {
        E164::parse(raw, "US")
    }

    #[test]
    fn parses_international_and_national_forms() {
        for raw in [
            "+12065550101",
            "+1 206 555 0101",
            "+1 (206) 555-0101",
            "(206) 555-0101",
            "206.555.0101",
            "[206] 555-0101",
            "206/555-0101",
            "  206 555 0101  ",
            "206\u{a0}555\u{2013}0101",
            "1 206 555 0101",
        ] {
            assert_eq!(
                us(raw).map(|n| n.to_string()),
                Ok("+12065550101".into()),
                "{raw}"
            );
        }
        assert_eq!(us("+44 20 7946 0958").unwrap().as_str(), "+442079460958");
        assert_eq!(
            E164::parse("020 7946 0958", "GB").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            E164::parse("+1 206 555 0101", "gb").unwrap().as_str(),
            "+12065550101",
            "a number with a country code ignores the (case-insensitive) region"
        );
    }

    #[test]
    fn a_foreign_number_is_read_under_its_own_countrys_rules() {
        // Read in region US, whose national prefix `1` the crate used to strip from these.
        for (raw, region, e164) in [
            ("+49 176 12345678", "US", "+4917612345678"),
            ("+4915110000000", "US", "+4915110000000"),
            ("011 49 176 12345678", "US", "+4917612345678"),
            ("00 49 176 12345678", "DE", "+4917612345678"),
            ("+49 176 12345678", "DE", "+4917612345678"),
        ] {
            assert_eq!(
                E164::parse(raw, region).map(|n| n.as_str().to_owned()),
                Ok(e164.to_owned()),
                "{raw} in {region}"
            );
        }
        assert_eq!(us("+1 206 555 0101").unwrap().as_str(), "+12065550101");
        assert_eq!(us("011 44 20 7946 0958").unwrap().as_str(), "+442079460958");
    }

    #[test]
    fn refuses_what_is_not_a_valid_number() {
        assert_eq!(us(""), Err(PhoneError::Empty));
        assert_eq!(us("   "), Err(PhoneError::Empty));
        assert_eq!(us("hello"), Err(PhoneError::NotANumber));
        assert_eq!(us("<script>"), Err(PhoneError::NotANumber));
        assert_eq!(us(&"1".repeat(65)), Err(PhoneError::TooLong));
        assert_eq!(us("+999 123456789"), Err(PhoneError::InvalidCountryCode));
        assert_eq!(
            us("555 555 5555"),
            Err(PhoneError::InvalidForRegion {
                region: "US".into()
            })
        );
        assert_eq!(
            E164::parse("07700 90012", "gb"),
            Err(PhoneError::InvalidForRegion {
                region: "GB".into()
            })
        );
        assert_eq!(
            us("+44 7700 90012"),
            Err(PhoneError::InvalidForCountryCode { country_code: 44 })
        );
        assert_eq!(us("206 555 0101 x12"), Err(PhoneError::HasExtension));
        assert_eq!(
            us("call 206 555 0101"),
            Err(PhoneError::UnexpectedCharacters)
        );
        assert_eq!(us("1-800-FLOWERS"), Err(PhoneError::UnexpectedCharacters));
    }

    #[test]
    fn unknown_region_is_an_error_even_for_international_numbers() {
        for region in ["UK", "ZZ", "", "United States"] {
            let err = E164::parse("+12065550101", region).unwrap_err();
            assert!(matches!(err, PhoneError::UnknownRegion { .. }), "{region}");
        }
        let err = E164::parse("+12065550101", &"X".repeat(500)).unwrap_err();
        assert!(err.to_string().len() < 200, "the region is cut short");
    }

    #[test]
    fn errors_never_echo_the_number() {
        for raw in [
            "555 555 5555",
            "+44 7700 90012",
            "206 555 0101 x12",
            "+999 123456789",
        ] {
            let message = us(raw).unwrap_err().to_string();
            assert!(!message.contains("555"), "{message}");
            assert!(!message.contains("7700"), "{message}");
            assert!(!message.contains("123456789"), "{message}");
        }
    }

    #[test]
    fn masked_shows_country_code_and_last_two_digits() {
        assert_eq!(us("+12065550101").unwrap().masked(), "+1 ••• ••• ••01");
        assert_eq!(us("+44 20 7946 0958").unwrap().masked(), "+44 •• •••• ••58");
        assert_eq!(us("+49 30 123456").unwrap().masked(), "+49 •• ••••56");
        for number in [
            "+12065550101",
            "+442079460958",
            "+4930123456",
            "+447911123456",
        ] {
            let masked = us(number).unwrap().masked();
            let shown: String = masked.chars().filter(char::is_ascii_digit).collect();
            let country_code = masked[1..].split(' ').next().unwrap();
            assert_eq!(
                shown,
                format!("{country_code}{}", &number[number.len() - 2..]),
                "{masked}"
            );
        }
    }

    #[test]
    fn display_serialize_and_debug() {
        let number = us("(206) 555-0101").unwrap();
        assert_eq!(number.to_string(), "+12065550101");
        assert_eq!(serde_json::to_string(&number).unwrap(), "\"+12065550101\"");
        let debug = format!("{number:?}");
        assert!(!debug.contains("2065550101"), "{debug}");
        assert!(debug.contains("01"), "{debug}");
        assert_eq!(number, us("+1 206 555 0101").unwrap());
    }
}
