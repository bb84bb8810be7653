//! The SMS texts Vouch sends to end users, worded in one place so each can be measured.
//!
//! Every text starts with the MSP's name (the sender number alone tells the user nothing),
//! names the account it is about (`dana@contoso.com`), and names the MSP's support phone
//! when the MSP set one. The code text never asks the user to read the code aloud unless the
//! user called the MSP: it says "only if you called Northwind IT".
//!
//! # One segment
//!
//! A text should fit one SMS segment: 160 characters of the GSM-7 basic set (no curly
//! quotes, no dash other than `-`, no ellipsis, no `[ ] { } ~ ^ | \ €`). The wording here
//! uses that set only; the tests measure every text with the demo MSP's name
//! (`Northwind IT (demo)`), a 40-character user principal name, a support phone and a link
//! as long as Vouch makes it with the default `http.public_url` (88 characters: the token
//! alone is 64). With a link that long, a link text cannot carry everything, so each text is
//! tried in these forms, and the first that fits one segment ([`segments`]) is sent:
//!
//! 1. everything: the lifetime and the support phone included;
//! 2. without the lifetime (the page behind a link says it too);
//! 3. a shorter wording, still with the support phone;
//! 4. without the support phone (the page behind a link shows it too), in the longer
//!    wording, then in the shorter one;
//! 5. the shortest wording.
//!
//! Measured so, the code text keeps the support phone (only its lifetime goes), while the
//! three link texts take their shortest form, without the phone; with a short account
//! (`dana@contoso.com`) and a short MSP name (`Northwind IT`), they keep the phone too.
//! Every character `http.public_url` has beyond the default's 22 comes off that room: with a
//! longer address, long accounts reach the shortest form, or two segments, sooner.
//!
//! The MSP's name, the account and the code or link are never dropped nor cut. When even the
//! shortest form does not fit (an account or MSP name far longer than usual, or a character
//! outside GSM-7, which makes every segment 70 characters), that form is sent as it is, in
//! more than one segment: a text that names the wrong or half an account would be worse.

use chrono::Duration;

use crate::core::share::usable_support_phone;
use crate::store::msp::MspAccount;

/// One GSM-7 segment: 160 septets.
pub const GSM7_SEGMENT: usize = 160;

/// Who the text is from, as the user reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The name the MSP signs its texts with: its SMS sender name, else its name.
    pub brand: String,
    /// The MSP's support phone, when it set a usable one.
    pub support_phone: Option<String>,
}

impl Sender {
    pub fn of(msp: &MspAccount) -> Sender {
        Sender {
            brand: msp
                .brand_sms_sender_name
                .as_deref()
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .unwrap_or(msp.name.trim())
                .to_owned(),
            support_phone: msp
                .brand_support_phone
                .as_deref()
                .and_then(usable_support_phone),
        }
    }
}

/// The SMS code of a verification: the code first (so it is the first number in the text),
/// then the account, and that it is to be read out only to the MSP the user called.
pub fn sms_code(from: &Sender, account: &str, code: &str, valid_for: Duration) -> String {
    let brand = &from.brand;
    let head = format!("{brand}: your code is {code} for {account}.");
    let short = format!("{brand}: code is {code} for {account}, only if you called {brand}");
    forms(
        from,
        |help| {
            format!(
                "{head} Read it out only if you called {brand}. Valid {}.{help}",
                lifetime(valid_for)
            )
        },
        |help| format!("{head} Read it out only if you called {brand}.{help}"),
        |help| format!("{short}.{help}"),
        short.clone(),
    )
}

/// The one-tap link of a verification: to tap only if the user called the MSP.
pub fn one_tap_link(from: &Sender, account: &str, link: &str, valid_for: Duration) -> String {
    let brand = &from.brand;
    let head = format!("{brand}: only if you called us about {account}, tap {link}");
    forms(
        from,
        |help| format!("{head} (valid {}).{help}", lifetime(valid_for)),
        |help| format!("{head}{help}"),
        |help| format!("{brand}: confirm {account}: {link}{help}"),
        format!("{brand}: confirm {account}: {link}"),
    )
}

/// The secure link holding the new password of a reset.
pub fn password_link(
    from: &Sender,
    account: &str,
    link: &str,
    opens: u32,
    valid_for: Duration,
) -> String {
    let brand = &from.brand;
    let head = format!("{brand}: your new password for {account} is at {link}");
    forms(
        from,
        |help| {
            format!(
                "{head} (opens {}, within {}).{help}",
                times(opens),
                lifetime(valid_for)
            )
        },
        |help| format!("{head}{help}"),
        |help| format!("{brand}: new password for {account}: {link}{help}"),
        format!("{brand}: {account} password: {link}"),
    )
}

/// The secure link of a message the MSP shares with a Microsoft 365 user.
pub fn message_link(
    from: &Sender,
    account: &str,
    link: &str,
    opens: u32,
    valid_for: Duration,
) -> String {
    let brand = &from.brand;
    let head = format!("{brand}: a secure message for {account}: {link}");
    forms(
        from,
        |help| {
            format!(
                "{head} (opens {}, within {}).{help}",
                times(opens),
                lifetime(valid_for)
            )
        },
        |help| format!("{head}{help}"),
        |help| format!("{brand}: message for {account}: {link}{help}"),
        format!("{brand}: {account} message: {link}"),
    )
}

/// The first of a text's forms (module doc) that fits one segment, or else the shortest.
/// `full`, `long` and `short` take the support phone's sentence (` Help: ...`, or nothing);
/// `full` is `long` with the lifetime.
fn forms(
    from: &Sender,
    full: impl Fn(&str) -> String,
    long: impl Fn(&str) -> String,
    short: impl Fn(&str) -> String,
    shortest: String,
) -> String {
    let help = from
        .support_phone
        .as_deref()
        .map(|phone| format!(" Help: {phone}"));
    let mut candidates = Vec::with_capacity(7);
    if let Some(help) = &help {
        candidates.extend([full(help), long(help), short(help)]);
    } else {
        candidates.push(full(""));
    }
    candidates.extend([long(""), short("")]);
    candidates
        .into_iter()
        .find(|text| segments(text) == 1)
        .unwrap_or(shortest)
}

/// `5 min`, `24 h`, `7 days`.
pub fn lifetime(valid_for: Duration) -> String {
    let minutes = valid_for.num_minutes().max(1);
    match minutes {
        ..=90 => format!("{minutes} min"),
        91..=2159 => format!("{} h", (minutes + 30) / 60),
        _ => format!("{} days", (minutes + 720) / 1440),
    }
}

/// `once`, `twice`, `3 times`.
fn times(opens: u32) -> String {
    match opens {
        0 | 1 => "once".to_owned(),
        2 => "twice".to_owned(),
        n => format!("{n} times"),
    }
}

/// GSM 03.38 basic character set: one septet each.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table: two septets each (escape and character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Whether `c` is one septet of the GSM-7 basic set.
pub fn is_gsm7_basic(c: char) -> bool {
    GSM7_BASIC.contains(c)
}

/// How many SMS segments `text` takes: GSM-7 when every character allows it (160 septets
/// in one message, 153 per part of a longer one), otherwise UCS-2 (70 UTF-16 units, 67 per
/// part).
pub fn segments(text: &str) -> usize {
    let septets: Option<usize> = text
        .chars()
        .map(|c| {
            if is_gsm7_basic(c) {
                Some(1)
            } else if GSM7_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (units, single, part) = match septets {
        Some(septets) => (septets, GSM7_SEGMENT, 153),
        None => (text.encode_utf16().count(), 70, 67),
    };
    if units <= single {
        1
    } else {
        units.div_ceil(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::access::random_token;

    /// The demo MSP's name (`src/demo.rs`).
    const BRAND: &str = "Northwind IT (demo)";
    /// A realistic long user principal name: 40 characters.
    const LONG_UPN: &str = "christopher.vanderberg-smith@contoso.com";
    const PHONE: &str = "+1 206 555 0199";

    fn sender(phone: Option<&str>) -> Sender {
        Sender {
            brand: BRAND.to_owned(),
            support_phone: phone.map(str::to_owned),
        }
    }

    /// A link as Vouch makes it with the default public URL.
    fn link(prefix: &str) -> String {
        let public_url = Config::default().http.public_url;
        let link = match prefix {
            "s" => crate::core::share::link_for(&public_url, &random_token()),
            _ => crate::core::verification::one_tap_url(&public_url, &random_token())
                .unwrap()
                .to_string(),
        };
        assert_eq!(link.len(), 88, "{link}");
        link
    }

    /// Every text, for `account` and `phone`, with its name.
    fn every_text(account: &str, phone: Option<&str>) -> Vec<(&'static str, String)> {
        let from = sender(phone);
        vec![
            (
                "code",
                sms_code(&from, account, "482913", Duration::minutes(10)),
            ),
            (
                "one-tap",
                one_tap_link(&from, account, &link("v"), Duration::minutes(5)),
            ),
            (
                "password",
                password_link(&from, account, &link("s"), 1, Duration::hours(24)),
            ),
            (
                "message",
                message_link(&from, account, &link("s"), 1, Duration::hours(24)),
            ),
        ]
    }

    fn assert_one_gsm7_segment(name: &str, text: &str) {
        assert!(
            text.chars().count() <= GSM7_SEGMENT,
            "{name}: {} characters: {text}",
            text.chars().count()
        );
        let outside: Vec<char> = text.chars().filter(|c| !is_gsm7_basic(*c)).collect();
        assert!(outside.is_empty(), "{name}: {outside:?} in {text}");
        assert_eq!(segments(text), 1, "{name}: {text}");
    }

    #[cfg(feature = "sandbox")]
    #[test]
    fn the_brand_measured_is_the_demo_msps() {
        assert_eq!(BRAND, crate::demo::DEMO_MSP_NAME);
    }

    #[test]
    fn every_text_fits_one_gsm7_segment_with_a_long_account_and_a_support_phone() {
        assert_eq!(LONG_UPN.len(), 40);
        for (name, text) in every_text(LONG_UPN, Some(PHONE)) {
            assert_one_gsm7_segment(name, &text);
            assert!(text.starts_with(&format!("{BRAND}: ")), "{name}: {text}");
            assert!(text.contains(LONG_UPN), "{name} names the account: {text}");
        }
    }

    #[test]
    fn the_code_text_names_the_account_and_the_phone_and_asks_for_the_code_only_from_a_caller() {
        let text = sms_code(
            &sender(Some(PHONE)),
            LONG_UPN,
            "482913",
            Duration::minutes(10),
        );
        assert_one_gsm7_segment("code", &text);
        assert!(text.contains("your code is 482913 for "), "{text}");
        assert!(
            text.contains(&format!("only if you called {BRAND}")),
            "{text}"
        );
        assert!(text.contains(PHONE), "{text}");
        // The code is the first number in the text (the phone's digits come after it).
        let first: String = text.chars().filter(char::is_ascii_digit).take(6).collect();
        assert_eq!(first, "482913", "{text}");
        let short = sms_code(
            &sender(Some(PHONE)),
            "dana@contoso.com",
            "482913",
            Duration::minutes(10),
        );
        assert!(short.contains("Valid 10 min."), "{short}");
    }

    #[test]
    fn the_support_phone_is_named_where_it_fits_and_never_without_one() {
        // A short MSP name and account leave room for the phone even in a link text.
        let from = Sender {
            brand: "Northwind IT".into(),
            support_phone: Some(PHONE.into()),
        };
        for (name, text) in [
            (
                "one-tap",
                one_tap_link(&from, "dana@contoso.com", &link("v"), Duration::minutes(5)),
            ),
            (
                "password",
                password_link(
                    &from,
                    "dana@contoso.com",
                    &link("s"),
                    1,
                    Duration::hours(24),
                ),
            ),
            (
                "message",
                message_link(
                    &from,
                    "dana@contoso.com",
                    &link("s"),
                    1,
                    Duration::hours(24),
                ),
            ),
        ] {
            assert_one_gsm7_segment(name, &text);
            assert!(text.contains(&format!("Help: {PHONE}")), "{name}: {text}");
            assert!(text.contains("dana@contoso.com"), "{name}: {text}");
        }
        for (name, text) in every_text("dana@contoso.com", None) {
            assert_one_gsm7_segment(name, &text);
            assert!(!text.contains("Help"), "{name}: {text}");
        }
    }

    #[test]
    fn the_link_is_a_word_of_its_own() {
        for (name, text) in every_text(LONG_UPN, Some(PHONE))
            .into_iter()
            .chain(every_text("dana@contoso.com", Some(PHONE)))
            .filter(|(name, _)| *name != "code")
        {
            let word = text
                .split_whitespace()
                .find(|w| w.starts_with("http"))
                .unwrap_or_else(|| panic!("{name}: {text}"));
            assert_eq!(word.len(), 88, "{name}: {text}");
        }
    }

    #[test]
    fn a_very_long_account_is_never_cut() {
        let account = format!("{}@contoso.com", "a".repeat(80));
        for (name, text) in every_text(&account, Some(PHONE)) {
            assert!(text.contains(&account), "{name}: {text}");
            assert!(!text.contains(PHONE), "{name}: {text}");
            assert!(segments(&text) >= 1);
        }
        // The shortest form is what goes out.
        let password = password_link(&sender(Some(PHONE)), &account, "L", 1, Duration::hours(1));
        assert!(
            password.contains(PHONE),
            "a short link leaves room: {password}"
        );
        let link = link("s");
        let password = password_link(&sender(Some(PHONE)), &account, &link, 1, Duration::hours(1));
        assert_eq!(password, format!("{BRAND}: {account} password: {link}"));
    }

    /// Not a check: what each text reads like, for `cargo test -- --nocapture texts`.
    #[test]
    fn print_every_text() {
        for (account, phone) in [
            (LONG_UPN, Some(PHONE)),
            ("dana@contoso.com", Some(PHONE)),
            ("dana@contoso.com", None),
        ] {
            for (name, text) in every_text(account, phone) {
                println!("{name:>8} {:>3} {text}", text.chars().count());
            }
        }
    }

    #[test]
    fn segments_count_septets_and_fall_back_to_ucs2() {
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // An extension character takes two septets.
        assert_eq!(segments(&format!("{}[", "a".repeat(158))), 1);
        assert_eq!(segments(&format!("{}[", "a".repeat(159))), 2);
        // One character outside GSM-7 makes the whole text UCS-2.
        assert_eq!(segments(&format!("{}\u{2019}", "a".repeat(69))), 1);
        assert_eq!(segments(&format!("{}\u{2019}", "a".repeat(70))), 2);
        for c in ['\u{2019}', '\u{2014}', '\u{2026}', '\u{201c}', '`'] {
            assert!(!is_gsm7_basic(c), "{c}");
        }
        for c in ['@', '\'', '"', '-', '_', ':', '(', ')', '+', '/', '?', '.'] {
            assert!(is_gsm7_basic(c), "{c}");
        }
    }

    #[test]
    fn lifetimes_read_shortly() {
        assert_eq!(lifetime(Duration::minutes(5)), "5 min");
        assert_eq!(lifetime(Duration::minutes(10)), "10 min");
        assert_eq!(lifetime(Duration::hours(24)), "24 h");
        assert_eq!(lifetime(Duration::hours(24) - Duration::seconds(5)), "24 h");
        assert_eq!(lifetime(Duration::days(7)), "7 days");
        assert_eq!(lifetime(Duration::seconds(10)), "1 min");
        assert_eq!(times(1), "once");
        assert_eq!(times(2), "twice");
        assert_eq!(times(3), "3 times");
    }
}
