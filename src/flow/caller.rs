//! Who is calling: region from the number's prefix, tier and language from
//! the customer directory.
//!
//! A directory lookup may do I/O (the webhook), so it sits behind the
//! [`CustomerDirectory`] trait and happens in the driver; turning the number
//! and the lookup's answer into [`CallerAttributes`] is the pure
//! [`CallerAttributes::identify`]. For the webhook, this module builds the
//! request and reads the response ([`webhook_request`],
//! [`parse_webhook_response`]); the HTTP client belongs to the driver, which
//! also enforces the timeout and routes without a customer record when it
//! expires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::model::{Callers, Region, Webhook};

/// What routing knows about the caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerAttributes {
    /// The caller's number, normalised (see [`normalize_number`]).
    pub number: String,
    /// From the longest matching prefix in `callers.regions`.
    pub region: Option<String>,
    /// From the customer record (e.g. `premium`).
    pub tier: Option<String>,
    /// From the customer record, else the region; the driver may overwrite
    /// it with the language detected in the caller's speech.
    pub language: Option<String>,
    /// The customer's name, for the agent to greet them.
    pub name: Option<String>,
}

impl CallerAttributes {
    /// Combines the caller's number, the flow's prefix table and the
    /// customer record (if the lookup found one). The customer's language
    /// wins over the region's.
    pub fn identify(callers: Option<&Callers>, number: &str, customer: Option<&Customer>) -> Self {
        let number = normalize_number(number);
        let region = callers.and_then(|c| region_for(&c.regions, &number));
        CallerAttributes {
            region: region.map(|r| r.region.clone()),
            tier: customer.and_then(|c| c.tier.clone()),
            language: customer
                .and_then(|c| c.language.clone())
                .or_else(|| region.and_then(|r| r.language.clone())),
            name: customer.map(|c| c.name.clone()).filter(|n| !n.is_empty()),
            number,
        }
    }
}

/// Strips what is not part of the number itself: a `sip:`/`tel:` scheme,
/// an `@host` part, URI parameters, spaces, dots, dashes and brackets.
/// A leading `+` is kept; `00` international prefixes are not rewritten,
/// since whether `00` means "international" depends on the country.
pub fn normalize_number(raw: &str) -> String {
    let mut s = raw.trim();
    for scheme in ["sip:", "sips:", "tel:"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest;
        }
    }
    let s = s.split(['@', ';']).next().unwrap_or_default();
    s.chars()
        .enumerate()
        .filter(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '+'))
        .map(|(_, c)| c)
        .collect()
}

/// The region whose prefix is the longest one the number starts with.
pub fn region_for<'a>(regions: &'a [Region], number: &str) -> Option<&'a Region> {
    regions
        .iter()
        .filter(|r| number.starts_with(r.prefix.as_str()))
        .max_by_key(|r| r.prefix.len())
}

/// A known customer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Customer {
    /// Normalised like caller numbers.
    pub number: String,
    pub name: String,
    pub tier: Option<String>,
    pub language: Option<String>,
}

/// Where customer records come from.
pub trait CustomerDirectory {
    /// The customer calling from `number` (normalised), if known.
    fn lookup(&self, number: &str) -> Result<Option<Customer>, DirectoryError>;
}

/// Why a lookup gave no answer; the call is routed as an unknown caller.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the customer lookup took longer than {0:?}")]
    Timeout(Duration),
    #[error("the customer lookup answered HTTP {0}")]
    Status(u16),
    #[error("the customer lookup answered something that is not a customer record")]
    InvalidResponse(#[source] serde_json::Error),
}

/// A customer CSV loaded into memory: `number,name,tier,language` with a
/// header row; columns may come in any order, `tier` and `language` may be
/// empty.
#[derive(Debug, Clone, Default)]
pub struct CsvDirectory {
    customers: BTreeMap<String, Customer>,
}

/// A problem with a customer CSV. Lines are 1-based, counting the header.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read customer file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("customer file has no \"{0}\" column")]
    MissingColumn(&'static str),
    #[error("malformed CSV: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("invalid phone number \"{number}\"")]
    BadNumber { line: usize, number: String },
    #[error("number \"{number}\" is listed twice")]
    Duplicate {
        line: usize,
        number: String,
        first_line: usize,
    },
}

impl CsvError {
    /// The CSV line the problem is on, if it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            CsvError::Io { .. } => None,
            CsvError::MissingColumn(_) => Some(1),
            CsvError::Malformed { line, .. }
            | CsvError::BadNumber { line, .. }
            | CsvError::Duplicate { line, .. } => Some(*line),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CsvError::Io { .. } => Some("the path is relative to the flow file".into()),
            CsvError::MissingColumn(_) => {
                Some("the first line must be a header such as number,name,tier,language".into())
            }
            CsvError::Malformed { .. } => Some(
                "every row needs as many fields as the header; quote fields holding commas".into(),
            ),
            CsvError::BadNumber { .. } => {
                Some("write numbers in E.164 form, e.g. +14155550123".into())
            }
            CsvError::Duplicate { first_line, .. } => {
                Some(format!("first listed on line {first_line}"))
            }
        }
    }
}

impl CsvDirectory {
    /// Reads and parses a customer file.
    pub fn from_path(path: &Path) -> Result<CsvDirectory, CsvError> {
        let text = std::fs::read_to_string(path).map_err(|source| CsvError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CsvDirectory::parse(&text)
    }

    /// Parses customer CSV text.
    pub fn parse(text: &str) -> Result<CsvDirectory, CsvError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| malformed(&e, 1))?.clone();
        let column = |name: &'static str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let number_at = column("number").ok_or(CsvError::MissingColumn("number"))?;
        let name_at = column("name");
        let tier_at = column("tier");
        let language_at = column("language");

        let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
        let mut first_lines: BTreeMap<String, usize> = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| malformed(&e, 0))?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            let field = |at: Option<usize>| {
                at.and_then(|i| record.get(i))
                    .map(str::to_string)
                    .filter(|v| !v.is_empty())
            };
            let raw = record.get(number_at).unwrap_or_default();
            let number = normalize_number(raw);
            if !is_e164(&number) {
                return Err(CsvError::BadNumber {
                    line,
                    number: raw.to_string(),
                });
            }
            if let Some(&first_line) = first_lines.get(&number) {
                return Err(CsvError::Duplicate {
                    line,
                    number: raw.to_string(),
                    first_line,
                });
            }
            first_lines.insert(number.clone(), line);
            customers.insert(
                number.clone(),
                Customer {
                    number,
                    name: field(name_at).unwrap_or_default(),
                    tier: field(tier_at),
                    language: field(language_at),
                },
            );
        }
        Ok(CsvDirectory { customers })
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    /// Whether the file listed nobody.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }
}

fn malformed(error: &csv::Error, fallback_line: usize) -> CsvError {
    let line = error
        .position()
        .map_or(fallback_line, |p| p.line() as usize);
    let reason = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => error.to_string(),
    };
    CsvError::Malformed { line, reason }
}

impl CustomerDirectory for CsvDirectory {
    fn lookup(&self, number: &str) -> Result<Option<Customer>, DirectoryError> {
        Ok(self.customers.get(&normalize_number(number)).cloned())
    }
}

/// `+` and 2 to 15 digits (ITU-T E.164).
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// An HTTP request the driver sends for a webhook lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// POSTed to.
    pub url: String,
    /// `{"number": "+1..."}`, as `application/json`.
    pub body: String,
    /// Give up after this long and route the caller as unknown.
    pub timeout: Duration,
}

/// The request asking the webhook about `number`.
pub fn webhook_request(webhook: &Webhook, number: &str) -> WebhookRequest {
    WebhookRequest {
        url: webhook.url.clone(),
        body: serde_json::json!({ "number": normalize_number(number) }).to_string(),
        timeout: Duration::from_millis(webhook.timeout_ms),
    }
}

/// Reads the webhook's answer: 200 with `{"name", "tier", "language"}`
/// (all optional) is a customer, 404 is "not a customer", anything else
/// an error.
pub fn parse_webhook_response(
    number: &str,
    status: u16,
    body: &str,
) -> Result<Option<Customer>, DirectoryError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        tier: Option<String>,
        #[serde(default)]
        language: Option<String>,
    }
    match status {
        404 => Ok(None),
        200 => {
            let answer: Answer =
                serde_json::from_str(body).map_err(DirectoryError::InvalidResponse)?;
            Ok(Some(Customer {
                number: normalize_number(number),
                name: answer.name.unwrap_or_default(),
                tier: answer.tier.filter(|t| !t.is_empty()),
                language: answer.language.filter(|l| !l.is_empty()),
            }))
        }
        other => Err(DirectoryError::Status(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Callers {
        Callers {
            regions: vec![
                Region {
                    prefix: "+1".into(),
                    region: "north-america".into(),
                    language: None,
                },
                Region {
                    prefix: "+1212".into(),
                    region: "new-york".into(),
                    language: None,
                },
                Region {
                    prefix: "+34".into(),
                    region: "spain".into(),
                    language: Some("es".into()),
                },
            ],
            customers: None,
        }
    }

    #[test]
    fn normalises_numbers_from_sip_and_humans() {
        assert_eq!(
            normalize_number("sip:+1 (212) 555-0100@pbx.example.com;user=phone"),
            "+12125550100"
        );
        assert_eq!(normalize_number("tel:+34-91-555-0100"), "+34915550100");
        assert_eq!(normalize_number(" 2125550100 "), "2125550100");
        assert_eq!(normalize_number("1+2"), "12");
    }

    #[test]
    fn longest_prefix_gives_the_region() {
        let callers = regions();
        let ny = CallerAttributes::identify(Some(&callers), "+12125550100", None);
        assert_eq!(ny.region.as_deref(), Some("new-york"));
        let boston = CallerAttributes::identify(Some(&callers), "+16175550100", None);
        assert_eq!(boston.region.as_deref(), Some("north-america"));
        let uk = CallerAttributes::identify(Some(&callers), "+442071234567", None);
        assert_eq!(uk.region, None);
    }

    #[test]
    fn customer_language_wins_over_region_language() {
        let callers = regions();
        let madrid = CallerAttributes::identify(Some(&callers), "+34915550100", None);
        assert_eq!(madrid.language.as_deref(), Some("es"));
        let customer = Customer {
            number: "+34915550100".into(),
            name: "Ana".into(),
            tier: Some("premium".into()),
            language: Some("en".into()),
        };
        let known = CallerAttributes::identify(Some(&callers), "+34915550100", Some(&customer));
        assert_eq!(known.language.as_deref(), Some("en"));
        assert_eq!(known.tier.as_deref(), Some("premium"));
        assert_eq!(known.name.as_deref(), Some("Ana"));
        assert_eq!(known.region.as_deref(), Some("spain"));
    }

    #[test]
    fn csv_directory_finds_customers_by_normalised_number() {
        let directory = CsvDirectory::parse(
            "number,name,tier,language\n+1 212 555 0100,Ann Lee,premium,en\n+34915550100,Ana Ruiz,,es\n",
        )
        .unwrap();
        assert_eq!(directory.len(), 2);
        let ann = directory.lookup("sip:+12125550100@pbx").unwrap().unwrap();
        assert_eq!(ann.name, "Ann Lee");
        assert_eq!(ann.tier.as_deref(), Some("premium"));
        let ana = directory.lookup("+34915550100").unwrap().unwrap();
        assert_eq!(ana.tier, None);
        assert_eq!(directory.lookup("+15550000000").unwrap(), None);
    }

    #[test]
    fn csv_columns_may_be_reordered_and_partial() {
        let directory = CsvDirectory::parse("tier,number\ngold,+4420\n").unwrap();
        let c = directory.lookup("+4420").unwrap().unwrap();
        assert_eq!(
            (c.tier.as_deref(), c.name.as_str(), c.language),
            (Some("gold"), "", None)
        );
    }

    #[test]
    fn malformed_csv_reports_the_line() {
        let err = CsvDirectory::parse(
            "number,name,tier,language\n+12125550100,A,premium,en\n+12125550101,B\n",
        )
        .unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert_eq!(
            err.to_string(),
            "malformed CSV: 2 fields where the header has 4"
        );

        let err = CsvDirectory::parse("number,name\n+12125550100,A\nnot-a-number,B\n").unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert_eq!(err.to_string(), "invalid phone number \"not-a-number\"");

        let err =
            CsvDirectory::parse("number,name\n+12125550100,A\n+1 212 555 0100,B\n").unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert_eq!(err.hint().as_deref(), Some("first listed on line 2"));

        let err = CsvDirectory::parse("phone,name\n+12125550100,A\n").unwrap_err();
        assert_eq!(err.to_string(), "customer file has no \"number\" column");
        assert_eq!(err.line(), Some(1));
    }

    #[test]
    fn webhook_round_trip_is_pure() {
        let webhook = Webhook {
            url: "https://crm.example.com/lookup".into(),
            timeout_ms: 800,
        };
        let request = webhook_request(&webhook, "sip:+12125550100@pbx");
        assert_eq!(request.body, r#"{"number":"+12125550100"}"#);
        assert_eq!(request.timeout, Duration::from_millis(800));

        let found =
            parse_webhook_response("+12125550100", 200, r#"{"name":"Ann","tier":"premium"}"#)
                .unwrap()
                .unwrap();
        assert_eq!(found.tier.as_deref(), Some("premium"));
        assert_eq!(found.language, None);
        assert_eq!(parse_webhook_response("+1", 404, "").unwrap(), None);
        assert!(matches!(
            parse_webhook_response("+1", 503, ""),
            Err(DirectoryError::Status(503))
        ));
        assert!(matches!(
            parse_webhook_response("+1", 200, "<html>"),
            Err(DirectoryError::InvalidResponse(_))
        ));
    }

    #[test]
    fn e164_needs_plus_and_digits() {
        assert!(is_e164("+14155550123"));
        assert!(!is_e164("14155550123"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1415555012345678"));
        assert!(!is_e164("+1-415"));
    }
}
