//! The small part of OData `$filter` that Vouch uses against Graph:
//! `prop eq 'value'` and `collection/any(x:x eq 'value')`, joined by `and` / `or`
//! (`and` binds tighter; no parentheses). String comparison is case-insensitive, as in
//! Graph for these properties.

/// One comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Clause {
    /// `property eq 'value'`.
    Eq { property: String, value: String },
    /// `property/any(x:x eq 'value')`: some element of a collection equals the value.
    Any { property: String, value: String },
}

impl Clause {
    pub fn property(&self) -> &str {
        match self {
            Clause::Eq { property, .. } | Clause::Any { property, .. } => property,
        }
    }
}

/// A parsed filter: true when any of the groups has all of its clauses true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Filter {
    pub any_of: Vec<Vec<Clause>>,
}

impl Filter {
    /// Parses a filter; the error is a short reason for the 400 message.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let filter = parser.or_expression()?;
        if parser.at != parser.tokens.len() {
            return Err("unexpected text after the end of the filter".to_owned());
        }
        Ok(filter)
    }

    pub fn clauses(&self) -> impl Iterator<Item = &Clause> {
        self.any_of.iter().flatten()
    }

    /// Whether any clause is a lambda (`any`): Graph counts those as advanced queries.
    pub fn uses_lambda(&self) -> bool {
        self.clauses().any(|c| matches!(c, Clause::Any { .. }))
    }

    /// Evaluates against one object: `scalar` gives a property's value, `collection` the
    /// elements of a collection property.
    pub fn matches(
        &self,
        scalar: impl Fn(&str) -> Option<String>,
        collection: impl Fn(&str) -> Vec<String>,
    ) -> bool {
        self.any_of.iter().any(|group| {
            group.iter().all(|clause| match clause {
                Clause::Eq { property, value } => {
                    scalar(property).is_some_and(|actual| same_text(&actual, value))
                }
                Clause::Any { property, value } => collection(property)
                    .iter()
                    .any(|actual| same_text(actual, value)),
            })
        })
    }
}

fn same_text(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
    Colon,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            ':' => {
                chars.next();
                tokens.push(Token::Colon);
            }
            '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        // A doubled quote is an escaped quote.
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            value.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => value.push(other),
                        None => return Err("unterminated string literal".to_owned()),
                    }
                }
                tokens.push(Token::Text(value));
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/') => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected character '{other}'")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn expect(&mut self, expected: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(token) if token == expected => Ok(()),
            _ => Err(format!("expected {what}")),
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), String> {
        match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword) => Ok(()),
            _ => Err(format!("expected '{keyword}'")),
        }
    }

    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            _ => Err("expected a property name".to_owned()),
        }
    }

    fn text(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Text(t)) => Ok(t),
            _ => Err("expected a quoted string".to_owned()),
        }
    }

    fn or_expression(&mut self) -> Result<Filter, String> {
        let mut any_of = vec![self.and_expression()?];
        while self.peek_keyword("or") {
            self.at += 1;
            any_of.push(self.and_expression()?);
        }
        Ok(Filter { any_of })
    }

    fn and_expression(&mut self) -> Result<Vec<Clause>, String> {
        let mut all_of = vec![self.clause()?];
        while self.peek_keyword("and") {
            self.at += 1;
            all_of.push(self.clause()?);
        }
        Ok(all_of)
    }

    fn clause(&mut self) -> Result<Clause, String> {
        let word = self.word()?;
        let lower = word.to_ascii_lowercase();
        if let Some(property) = lower.strip_suffix("/any") {
            let property = word[..property.len()].to_owned();
            self.expect(Token::Open, "'('")?;
            let variable = self.word()?;
            self.expect(Token::Colon, "':'")?;
            let used = self.word()?;
            if used != variable {
                return Err(format!("unknown range variable '{used}'"));
            }
            self.expect_keyword("eq")?;
            let value = self.text()?;
            self.expect(Token::Close, "')'")?;
            return Ok(Clause::Any { property, value });
        }
        if word.contains('/') {
            return Err(format!("unsupported expression '{word}'"));
        }
        self.expect_keyword("eq")?;
        let value = self.text()?;
        Ok(Clause::Eq {
            property: word,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_filters_vouch_sends() {
        let filter = Filter::parse("mail eq 'a@b.com'").unwrap();
        assert_eq!(
            filter.any_of,
            vec![vec![Clause::Eq {
                property: "mail".into(),
                value: "a@b.com".into()
            }]]
        );
        let filter = Filter::parse("proxyAddresses/any(x:x eq 'smtp:o''neil@b.com')").unwrap();
        assert_eq!(
            filter.any_of,
            vec![vec![Clause::Any {
                property: "proxyAddresses".into(),
                value: "smtp:o'neil@b.com".into()
            }]]
        );
        assert!(filter.uses_lambda());
        let filter =
            Filter::parse("mail eq 'a' or userPrincipalName eq 'b' and id eq 'c'").unwrap();
        assert_eq!(filter.any_of.len(), 2);
        assert_eq!(filter.any_of[1].len(), 2);
    }

    #[test]
    fn rejects_what_it_does_not_understand() {
        for bad in [
            "",
            "mail",
            "mail eq",
            "mail eq 'x",
            "mail ne 'x'",
            "startswith(mail,'x')",
            "proxyAddresses/any(x:y eq 'a')",
            "mail eq 'a' extra",
            "mail eq 'a' ; drop",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_ignores_case() {
        let filter = Filter::parse("mail eq 'Dana@Contoso.example'").unwrap();
        assert!(filter.matches(|_| Some("dana@contoso.example".into()), |_| Vec::new()));
        let filter =
            Filter::parse("proxyAddresses/any(p:p eq 'smtp:lee@contoso.example')").unwrap();
        assert!(filter.matches(|_| None, |_| vec!["SMTP:LEE@contoso.example".into()]));
        assert!(!filter.matches(|_| None, |_| vec!["smtp:other@contoso.example".into()]));
    }
}
