//! Generated passwords that meet Microsoft's complexity rules (8 to 256 characters, at least
//! three of: lower case, upper case, digits, symbols). Random passwords always contain all
//! four classes; passphrases are words joined by a symbol, with a digit and a capital.

use rand::Rng;
use rand::seq::SliceRandom;
use secrecy::SecretString;

use crate::domain::PasswordStyle;

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
/// Symbols that survive being read aloud, typed on phones and pasted into sign-in pages.
const SYMBOLS: &[u8] = b"!#$%*+-=?@^_";

/// Short, common, unambiguous words (no homophones), for passphrases.
const WORDS: &[&str] = &[
    "amber", "anchor", "apple", "arrow", "aspen", "badge", "bamboo", "basket", "beacon", "birch",
    "blossom", "bridge", "bronze", "cactus", "candle", "canyon", "carbon", "castle", "cedar",
    "cherry", "cinder", "cobalt", "comet", "copper", "coral", "cotton", "crystal", "delta",
    "desert", "ember", "falcon", "fern", "fjord", "forest", "garnet", "ginger", "glacier",
    "granite", "harbor", "hazel", "helium", "horizon", "island", "ivory", "jasper", "juniper",
    "kettle", "lagoon", "lantern", "lemon", "linen", "magnet", "maple", "marble", "meadow",
    "meteor", "mint", "nectar", "nickel", "oasis", "olive", "onyx", "orbit", "orchid", "otter",
    "paddle", "pepper", "pebble", "pine", "planet", "prairie", "quartz", "quill", "raven", "reef",
    "ribbon", "river", "saddle", "saffron", "salmon", "sierra", "silver", "sparrow", "spruce",
    "summit", "tango", "thistle", "timber", "topaz", "tulip", "tundra", "velvet", "violet",
    "walnut", "willow", "zephyr",
];

/// A new password of at least `length` characters (clamped to 12..=64).
pub fn generate(style: PasswordStyle, length: i32) -> SecretString {
    let length = length.clamp(12, 64) as usize;
    let mut rng = rand::rngs::OsRng;
    let password = match style {
        PasswordStyle::Random => {
            let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS]
                .iter()
                .map(|class| class[rng.gen_range(0..class.len())])
                .collect();
            let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
            while chars.len() < length {
                chars.push(all[rng.gen_range(0..all.len())]);
            }
            chars.shuffle(&mut rng);
            String::from_utf8(chars).expect("ASCII")
        }
        PasswordStyle::Passphrase => {
            let separator = SYMBOLS[rng.gen_range(0..SYMBOLS.len())] as char;
            let mut words: Vec<String> = Vec::new();
            while words.iter().map(|w| w.len() + 1).sum::<usize>() < length.saturating_sub(2)
                || words.len() < 3
            {
                words.push(WORDS[rng.gen_range(0..WORDS.len())].to_owned());
            }
            let capital = rng.gen_range(0..words.len());
            let word = &mut words[capital];
            word[..1].make_ascii_uppercase();
            format!(
                "{}{separator}{}",
                words.join(&separator.to_string()),
                rng.gen_range(10..100)
            )
        }
    };
    SecretString::from(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn classes(password: &str) -> usize {
        [
            password.bytes().any(|b| b.is_ascii_lowercase()),
            password.bytes().any(|b| b.is_ascii_uppercase()),
            password.bytes().any(|b| b.is_ascii_digit()),
            password.bytes().any(|b| !b.is_ascii_alphanumeric()),
        ]
        .iter()
        .filter(|x| **x)
        .count()
    }

    #[test]
    fn random_passwords_meet_the_complexity_rules() {
        for _ in 0..200 {
            let password = generate(PasswordStyle::Random, 16);
            let text = password.expose_secret();
            assert_eq!(text.len(), 16);
            assert_eq!(classes(text), 4, "{text}");
        }
        assert_eq!(generate(PasswordStyle::Random, 4).expose_secret().len(), 12);
    }

    #[test]
    fn passphrases_meet_the_complexity_rules() {
        for _ in 0..200 {
            let password = generate(PasswordStyle::Passphrase, 16);
            let text = password.expose_secret();
            assert!(text.len() >= 16, "{text}");
            assert!(classes(text) >= 3, "{text}");
        }
    }

    #[test]
    fn passwords_differ() {
        assert_ne!(
            generate(PasswordStyle::Random, 16).expose_secret(),
            generate(PasswordStyle::Random, 16).expose_secret()
        );
    }
}
