//! The rules that suggest which tenant a PSA company's users live in. Pure: the facts (a
//! company's name, website and contacts' e-mail addresses; each tenant's name and verified
//! domains) are read elsewhere, and this module knows no PSA and no Microsoft wire.
//!
//! Three kinds of evidence, each with a score out of 100:
//!
//! - **Contact domains.** Contacts with an address at a verified domain of the tenant (or a
//!   subdomain of one): 50, plus up to 30 for the share of the company's contacts (with an
//!   address) that are there, plus 4 for each such contact up to 5. Seven of seven: 100; one
//!   of one: 84.
//! - **Website.** The host of the company's website or domain field (`www.` dropped) is, or
//!   is under, a verified domain of the tenant: 90.
//! - **Name.** Jaro-Winkler similarity (the `strsim` crate) of the two names, each lower-cased
//!   with bracketed parts, punctuation and legal forms ("Ltd", "Inc.", "GmbH"...) dropped: at
//!   least 0.85 counts, for `70 × similarity`.
//!
//! A tenant's score joins its evidence as independent signals, `1 − Π(1 − s/100)`, rounded
//! down; the best-scoring tenant (ties: by name) is the suggestion. No evidence, no
//! suggestion.

use strsim::jaro_winkler;
use uuid::Uuid;

use crate::domain::{MatchConfidence, MatchEvidenceKind};

/// The least name similarity that counts as evidence.
pub const MIN_NAME_SIMILARITY: f64 = 0.85;
/// What a website at a verified domain scores.
pub const WEBSITE_SCORE: f64 = 90.0;
/// What identical names score (a close name scores this times its similarity).
pub const NAME_SCORE: f64 = 70.0;

/// Legal forms and filler words left out of names before they are compared.
const NAME_NOISE: &[&str] = &[
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "sarl",
    "srl",
    "bv",
    "nv",
    "pty",
    "co",
    "corp",
    "corporation",
    "company",
    "the",
];

/// What the PSA says of a company.
#[derive(Debug, Clone, Default)]
pub struct CompanyFacts {
    pub name: String,
    pub website: Option<String>,
    /// Each contact's e-mail addresses.
    pub contacts: Vec<Vec<String>>,
}

/// What Microsoft (or Vouch's store) says of a tenant.
#[derive(Debug, Clone)]
pub struct TenantFacts {
    pub id: Uuid,
    pub name: String,
    /// Lower-case domain names.
    pub verified_domains: Vec<String>,
}

/// One piece of evidence, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub kind: MatchEvidenceKind,
    /// Out of 100.
    pub score: u8,
    /// For a person: "7 contacts at contoso.com, a verified domain of Contoso".
    pub text: String,
}

/// The tenant suggested for a company.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantMatch {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    /// Out of 100.
    pub score: u8,
    pub confidence: MatchConfidence,
    /// Strongest first.
    pub evidence: Vec<Evidence>,
}

/// The best tenant for `company`, or `None` when nothing links it to any.
pub fn best_match(company: &CompanyFacts, tenants: &[TenantFacts]) -> Option<TenantMatch> {
    let mut best: Option<TenantMatch> = None;
    for tenant in tenants {
        let mut evidence: Vec<Evidence> = [
            contact_evidence(company, tenant),
            website_evidence(company, tenant),
            name_evidence(company, tenant),
        ]
        .into_iter()
        .flatten()
        .collect();
        if evidence.is_empty() {
            continue;
        }
        evidence.sort_by(|a, b| b.score.cmp(&a.score).then(a.kind.cmp(&b.kind)));
        let missing: f64 = evidence
            .iter()
            .map(|e| 1.0 - f64::from(e.score) / 100.0)
            .product();
        let score = ((1.0 - missing) * 100.0 + 1e-9).floor().clamp(0.0, 100.0) as u8;
        let candidate = TenantMatch {
            tenant_id: tenant.id,
            tenant_name: tenant.name.clone(),
            score,
            confidence: MatchConfidence::of(score),
            evidence,
        };
        let better = match &best {
            None => true,
            Some(current) => {
                candidate.score > current.score
                    || (candidate.score == current.score
                        && candidate.tenant_name.to_lowercase()
                            < current.tenant_name.to_lowercase())
            }
        };
        if better {
            best = Some(candidate);
        }
    }
    best
}

/// The domain of an e-mail address, lower-cased; `None` when it has none.
pub fn email_domain(address: &str) -> Option<String> {
    let (_, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (domain.contains('.') && !domain.contains(char::is_whitespace)).then_some(domain)
}

/// The host of a website or domain field (`https://www.contoso.com/about`, `contoso.com`),
/// lower-cased, without `www.`; `None` when it names no host.
pub fn website_host(website: &str) -> Option<String> {
    let website = website.trim();
    if website.is_empty() {
        return None;
    }
    let with_scheme = if website.contains("://") {
        website.to_owned()
    } else {
        format!("http://{website}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_owned();
    host.contains('.').then_some(host)
}

/// The verified domain of `tenant` that `host` is, or is under.
fn verified_domain_of<'t>(host: &str, tenant: &'t TenantFacts) -> Option<&'t str> {
    tenant
        .verified_domains
        .iter()
        .filter(|d| {
            host == d.as_str() || (host.len() > d.len() && host.ends_with(&format!(".{d}")))
        })
        .max_by_key(|d| d.len())
        .map(String::as_str)
}

fn contact_evidence(company: &CompanyFacts, tenant: &TenantFacts) -> Option<Evidence> {
    let with_address: Vec<Vec<String>> = company
        .contacts
        .iter()
        .map(|addresses| addresses.iter().filter_map(|a| email_domain(a)).collect())
        .filter(|domains: &Vec<String>| !domains.is_empty())
        .collect();
    // Each contact counts once, at the first of their addresses in the tenant.
    let mut per_domain: Vec<(String, usize)> = Vec::new();
    for domains in &with_address {
        if let Some(domain) = domains.iter().find_map(|d| verified_domain_of(d, tenant)) {
            match per_domain.iter_mut().find(|(d, _)| d == domain) {
                Some((_, count)) => *count += 1,
                None => per_domain.push((domain.to_owned(), 1)),
            }
        }
    }
    let matched: usize = per_domain.iter().map(|(_, n)| n).sum();
    if matched == 0 {
        return None;
    }
    per_domain.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let share = matched as f64 / with_address.len() as f64;
    let score = (50.0 + 30.0 * share + 4.0 * matched.min(5) as f64).min(100.0);
    let parts: Vec<String> = per_domain
        .iter()
        .enumerate()
        .map(|(index, (domain, count))| {
            let noun = if *count == 1 { "contact" } else { "contacts" };
            if index == 0 {
                format!("{count} {noun} at {domain}")
            } else {
                format!("{count} at {domain}")
            }
        })
        .collect();
    let of = if per_domain.len() == 1 {
        "a verified domain of"
    } else {
        "verified domains of"
    };
    let mut text = format!("{}, {of} {}", join_and(&parts), tenant.name);
    if matched < with_address.len() {
        text.push_str(&format!(
            " ({matched} of the {} contacts with an e-mail address)",
            with_address.len()
        ));
    }
    Some(Evidence {
        kind: MatchEvidenceKind::ContactDomains,
        score: score as u8,
        text,
    })
}

fn website_evidence(company: &CompanyFacts, tenant: &TenantFacts) -> Option<Evidence> {
    let website = company.website.as_deref()?;
    let host = website_host(website)?;
    let domain = verified_domain_of(&host, tenant)?;
    let text = if host == domain {
        format!(
            "its website {} is at {domain}, a verified domain of {}",
            website.trim(),
            tenant.name
        )
    } else {
        format!(
            "its website {} is under {domain}, a verified domain of {}",
            website.trim(),
            tenant.name
        )
    };
    Some(Evidence {
        kind: MatchEvidenceKind::Website,
        score: WEBSITE_SCORE as u8,
        text,
    })
}

/// A name as it is compared: lower-case words, without bracketed parts, punctuation or
/// legal forms.
pub fn normalized_name(name: &str) -> String {
    let mut plain = String::new();
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            c if depth == 0 => plain.push(if c.is_alphanumeric() { c } else { ' ' }),
            _ => {}
        }
    }
    let lower = plain.to_lowercase();
    let words: Vec<&str> = lower
        .split_whitespace()
        .filter(|w| !NAME_NOISE.contains(w))
        .collect();
    if words.is_empty() {
        lower.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        words.join(" ")
    }
}

fn name_evidence(company: &CompanyFacts, tenant: &TenantFacts) -> Option<Evidence> {
    let a = normalized_name(&company.name);
    let b = normalized_name(&tenant.name);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let similarity = jaro_winkler(&a, &b);
    if similarity < MIN_NAME_SIMILARITY {
        return None;
    }
    let percent = (similarity * 100.0).floor() as u8;
    let text = if a == b {
        format!(
            "its name \"{}\" is the tenant's \"{}\" (legal form and brackets aside)",
            company.name.trim(),
            tenant.name
        )
    } else {
        format!(
            "its name \"{}\" is like the tenant's \"{}\" ({percent}% similar)",
            company.name.trim(),
            tenant.name
        )
    };
    Some(Evidence {
        kind: MatchEvidenceKind::Name,
        score: (NAME_SCORE * similarity).floor() as u8,
        text,
    })
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str, domains: &[&str]) -> TenantFacts {
        TenantFacts {
            id: Uuid::new_v4(),
            name: name.into(),
            verified_domains: domains.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn contacts(addresses: &[&str]) -> Vec<Vec<String>> {
        addresses.iter().map(|a| vec![a.to_string()]).collect()
    }

    fn tenants() -> Vec<TenantFacts> {
        vec![
            tenant("Contoso", &["contoso.com", "contoso.onmicrosoft.com"]),
            tenant("Fabrikam (no P1)", &["fabrikam.com"]),
            tenant("Tailspin Toys", &["tailspintoys.com"]),
        ]
    }

    #[test]
    fn contacts_at_a_verified_domain_are_counted_in_words() {
        let company = CompanyFacts {
            name: "Northwind Client 7".into(),
            website: None,
            contacts: contacts(&[
                "a@contoso.com",
                "b@contoso.com",
                "c@Contoso.COM",
                "d@gmail.com",
            ]),
        };
        let m = best_match(&company, &tenants()).unwrap();
        assert_eq!(m.tenant_name, "Contoso");
        assert_eq!(m.evidence.len(), 1);
        assert_eq!(m.evidence[0].kind, MatchEvidenceKind::ContactDomains);
        assert_eq!(
            m.evidence[0].text,
            "3 contacts at contoso.com, a verified domain of Contoso (3 of the 4 contacts with an e-mail address)"
        );
        // 50 + 30 × 3/4 + 4 × 3.
        assert_eq!(m.score, 84);
        assert_eq!(m.confidence, MatchConfidence::High);
    }

    #[test]
    fn a_contact_counts_once_and_subdomains_count() {
        let company = CompanyFacts {
            name: "X".into(),
            website: None,
            contacts: vec![
                vec!["lee@contoso.com".into(), "lee.chen@contoso.com".into()],
                vec!["sam@eu.contoso.com".into()],
                vec!["no address".into()],
            ],
        };
        let m = best_match(&company, &tenants()).unwrap();
        assert_eq!(
            m.evidence[0].text,
            "2 contacts at contoso.com, a verified domain of Contoso"
        );
        assert_eq!(m.score, 88);
    }

    #[test]
    fn several_domains_are_listed() {
        let company = CompanyFacts {
            name: "X".into(),
            website: None,
            contacts: contacts(&[
                "a@contoso.com",
                "b@contoso.onmicrosoft.com",
                "c@contoso.com",
            ]),
        };
        let m = best_match(&company, &tenants()).unwrap();
        assert_eq!(
            m.evidence[0].text,
            "2 contacts at contoso.com and 1 at contoso.onmicrosoft.com, verified domains of Contoso"
        );
    }

    #[test]
    fn a_website_at_a_verified_domain_is_evidence() {
        let company = CompanyFacts {
            name: "FBK Holdings".into(),
            website: Some("https://www.fabrikam.com/about".into()),
            contacts: Vec::new(),
        };
        let m = best_match(&company, &tenants()).unwrap();
        assert_eq!(m.tenant_name, "Fabrikam (no P1)");
        assert_eq!(m.score, 90);
        assert_eq!(
            m.evidence[0].text,
            "its website https://www.fabrikam.com/about is at fabrikam.com, a verified domain of Fabrikam (no P1)"
        );
        assert_eq!(
            website_host("fabrikam.com").as_deref(),
            Some("fabrikam.com")
        );
        assert_eq!(website_host("  ").as_deref(), None);
        assert_eq!(website_host("intranet").as_deref(), None);
        // A look-alike domain is not a subdomain.
        assert_eq!(
            website_evidence(
                &CompanyFacts {
                    website: Some("notfabrikam.com".into()),
                    ..Default::default()
                },
                &tenants()[1]
            ),
            None
        );
    }

    #[test]
    fn names_are_compared_without_legal_forms_and_brackets() {
        assert_eq!(normalized_name("Tailspin Toys, Inc."), "tailspin toys");
        assert_eq!(normalized_name("Fabrikam (no P1)"), "fabrikam");
        assert_eq!(normalized_name("The Company Ltd"), "the company ltd");
        let company = CompanyFacts {
            name: "Tailspin Toys Inc.".into(),
            ..Default::default()
        };
        let m = best_match(&company, &tenants()).unwrap();
        assert_eq!(m.tenant_name, "Tailspin Toys");
        assert_eq!(m.score, 70);
        assert_eq!(m.confidence, MatchConfidence::Medium);
        assert_eq!(m.evidence[0].kind, MatchEvidenceKind::Name);
        assert_eq!(
            m.evidence[0].text,
            "its name \"Tailspin Toys Inc.\" is the tenant's \"Tailspin Toys\" (legal form and brackets aside)"
        );
        let close = CompanyFacts {
            name: "Tailspin Toyz".into(),
            ..Default::default()
        };
        let m = best_match(&close, &tenants()).unwrap();
        assert!(m.evidence[0].text.contains("% similar"), "{:?}", m.evidence);
        assert!(m.score < 70 && m.score >= 59, "{}", m.score);
    }

    #[test]
    fn nothing_in_common_is_no_suggestion() {
        let company = CompanyFacts {
            name: "Litware".into(),
            website: Some("litware.com".into()),
            contacts: contacts(&["x@litware.com"]),
        };
        assert_eq!(best_match(&company, &tenants()), None);
        assert_eq!(best_match(&company, &[]), None);
    }

    #[test]
    fn evidence_adds_up_and_the_best_tenant_wins() {
        let company = CompanyFacts {
            name: "Fabrikam".into(),
            website: Some("www.fabrikam.com".into()),
            contacts: contacts(&["kim@fabrikam.com"]),
        };
        let m = best_match(&company, &tenants()).unwrap();
        assert_eq!(m.tenant_name, "Fabrikam (no P1)");
        let kinds: Vec<MatchEvidenceKind> = m.evidence.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                MatchEvidenceKind::Website,
                MatchEvidenceKind::ContactDomains,
                MatchEvidenceKind::Name
            ]
        );
        // 1 − 0.10 × 0.16 × 0.30, rounded down.
        assert_eq!(m.score, 99);
        // Contacts elsewhere outweigh a similar name.
        let company = CompanyFacts {
            name: "Contoso".into(),
            website: None,
            contacts: contacts(&["a@fabrikam.com", "b@fabrikam.com", "c@fabrikam.com"]),
        };
        let m = best_match(&company, &tenants()).unwrap();
        assert_eq!(m.tenant_name, "Fabrikam (no P1)");
    }
}
