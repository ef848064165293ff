//! Contact plans: scheduled contacts (start, end, from, to, rate, one-way
//! delay), as used by contact graph routing (spec/routing.md §6,
//! [`crate::routing::cgr`]).
//!
//! # Text format (spec/contact-plan.md)
//!
//! One directive per line; `#` starts a comment (to the end of the line);
//! blank lines are ignored; fields are separated by spaces or tabs.
//!
//! ```text
//! # optional: epoch in DTN seconds (since 2000-01-01T00:00:00Z)
//! epoch 800000000
//! # contact <start_s> <end_s> <from> <to> <rate_bytes_per_s|unlimited> [<delay_ms>]
//! contact 0 600 1 2 125000 20
//! contact 0 600 2 1 unlimited
//! ```
//!
//! * Times are non-negative decimal seconds relative to the epoch (`12.5`,
//!   at most millisecond precision is kept: further digits are rounded to
//!   the nearest ms). No signs, exponents, `inf` or `NaN`.
//! * Without an `epoch` line the caller's default epoch applies; at most one
//!   `epoch` line, anywhere in the text.
//! * A node is an EID (`dtn://x/`, `ipn:3.0`; reduced to its node ID) or a
//!   non-negative integer `i`, meaning `dtn://n{i}/` (see [`node_eid`]).
//! * The rate is a positive integer in bytes per second or `unlimited`; the
//!   delay is an integer in milliseconds (default 0).
//!
//! Limits: a line is at most [`MAX_LINE_BYTES`]; at most [`MAX_CONTACTS`]
//! contacts; `end > start`; `from != to`. Every error names its 1-based line.

use crate::bundle::{Eid, EidError};
use std::fmt::Write as _;

/// Longest accepted line, in bytes (without the line break).
pub const MAX_LINE_BYTES: usize = 4096;

/// Most contacts one plan may hold.
pub const MAX_CONTACTS: usize = 10_000_000;

/// One scheduled, one-directional contact.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedContact {
    /// Start, DTN ms.
    pub start_ms: u64,
    /// End, DTN ms (> start).
    pub end_ms: u64,
    /// Sending node ID.
    pub from: Eid,
    /// Receiving node ID.
    pub to: Eid,
    /// Rate in bytes per second; `None` = unlimited.
    pub rate_bytes_per_s: Option<u64>,
    /// One-way light/propagation delay, ms.
    pub delay_ms: u64,
}

/// A contact plan: every planned contact, sorted by start time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContactPlan {
    /// Contacts sorted by `start_ms`.
    pub contacts: Vec<PlannedContact>,
}

/// Why a contact plan (or a node name) could not be read. `line` is the
/// 1-based line number in the text; 0 for a name given outside a text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// The first word is neither `epoch` nor `contact`.
    #[error("line {line}: unknown directive {word:?} (expected `epoch` or `contact`)")]
    UnknownDirective {
        /// 1-based line number.
        line: usize,
        /// The word found.
        word: String,
    },
    /// Wrong number of fields for the directive.
    #[error("line {line}: {directive} takes {expected} fields, found {found}")]
    FieldCount {
        /// 1-based line number.
        line: usize,
        /// `epoch` or `contact`.
        directive: &'static str,
        /// What the directive takes, e.g. `5 or 6`.
        expected: &'static str,
        /// Fields found after the directive word.
        found: usize,
    },
    /// A time is not a non-negative decimal number of seconds, or overflows.
    #[error("line {line}: bad {field} {text:?} (non-negative decimal seconds expected)")]
    BadTime {
        /// 1-based line number.
        line: usize,
        /// Which field: `epoch`, `start` or `end`.
        field: &'static str,
        /// The text found.
        text: String,
    },
    /// A node name is neither a non-negative integer nor a valid node EID.
    #[error("line {line}: bad node name {text:?}: {reason}")]
    BadNode {
        /// 1-based line number (0 outside a text).
        line: usize,
        /// The text found.
        text: String,
        /// Why the EID is invalid.
        reason: String,
    },
    /// The rate is not a positive integer or `unlimited`.
    #[error("line {line}: bad rate {text:?} (bytes per second > 0, or `unlimited`)")]
    BadRate {
        /// 1-based line number.
        line: usize,
        /// The text found.
        text: String,
    },
    /// The delay is not a non-negative integer number of milliseconds.
    #[error("line {line}: bad delay {text:?} (integer milliseconds)")]
    BadDelay {
        /// 1-based line number.
        line: usize,
        /// The text found.
        text: String,
    },
    /// `end <= start`.
    #[error("line {line}: contact ends ({end_ms} ms) before or when it starts ({start_ms} ms)")]
    EmptyContact {
        /// 1-based line number.
        line: usize,
        /// Start, ms relative to the epoch.
        start_ms: u64,
        /// End, ms relative to the epoch.
        end_ms: u64,
    },
    /// A contact from a node to itself.
    #[error("line {line}: contact from {node} to itself")]
    SelfContact {
        /// 1-based line number.
        line: usize,
        /// The node.
        node: Eid,
    },
    /// A second `epoch` line.
    #[error("line {line}: second `epoch` line")]
    DuplicateEpoch {
        /// 1-based line number.
        line: usize,
    },
    /// Epoch plus relative time does not fit in u64 milliseconds.
    #[error("line {line}: time overflows u64 milliseconds once the epoch is added")]
    TimeOverflow {
        /// 1-based line number.
        line: usize,
    },
    /// More than [`MAX_CONTACTS`] contacts.
    #[error("line {line}: more than {MAX_CONTACTS} contacts")]
    TooManyContacts {
        /// 1-based line number of the first contact over the limit.
        line: usize,
    },
}

/// Maps a node name of the plan format to a node ID.
///
/// A non-negative decimal integer `i` (e.g. `"7"`) means `dtn://n{i}/`, the
/// naming of the simulator and of ONE traces; anything else must parse as an
/// EID and is reduced to its node ID (`dtn://x/svc` → `dtn://x/`,
/// `ipn:3.5` → `ipn:3.0`).
///
/// # Errors
/// [`PlanError::BadNode`] (with `line` 0) for an invalid EID or `dtn:none`.
pub fn node_eid(name: &str) -> Result<Eid, PlanError> {
    node_at(name, 0)
}

fn node_at(name: &str, line: usize) -> Result<Eid, PlanError> {
    let bad = |reason: String| PlanError::BadNode {
        line,
        text: name.to_owned(),
        reason,
    };
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        let i: u64 = name
            .parse()
            .map_err(|_| bad("node number out of range".into()))?;
        return Eid::dtn(&format!("n{i}"), "").map_err(|e: EidError| bad(e.to_string()));
    }
    let eid: Eid = name.parse().map_err(|e: EidError| bad(e.to_string()))?;
    if eid.is_none() {
        return Err(bad("dtn:none is not a node".into()));
    }
    Ok(eid.node_id())
}

/// Parses non-negative decimal seconds (`12`, `12.5`, `0.001`) into ms,
/// rounding digits beyond the third decimal to the nearest ms. `None` for
/// anything else (signs, exponents, `inf`, `NaN`, empty parts, overflow).
fn parse_seconds_ms(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
        return None;
    }
    let whole: u64 = int.parse().ok()?;
    let mut ms: u64 = 0;
    for (i, b) in frac.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
    }
    let round_up = frac.as_bytes().get(3).is_some_and(|b| *b >= b'5');
    whole
        .checked_mul(1000)?
        .checked_add(ms)?
        .checked_add(u64::from(round_up))
}

/// Formats ms as decimal seconds with no trailing zeros (`12500` → `12.5`).
fn format_seconds(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        s.to_string()
    } else {
        let f = format!("{frac:03}");
        format!("{s}.{}", f.trim_end_matches('0'))
    }
}

/// A contact as read, times relative to the (not yet known) epoch.
struct RawContact {
    line: usize,
    c: PlannedContact,
}

fn parse_contact(fields: &[&str], line: usize) -> Result<RawContact, PlanError> {
    if !(5..=6).contains(&fields.len()) {
        return Err(PlanError::FieldCount {
            line,
            directive: "contact",
            expected: "5 or 6",
            found: fields.len(),
        });
    }
    let time = |field: &'static str, text: &str| {
        parse_seconds_ms(text).ok_or_else(|| PlanError::BadTime {
            line,
            field,
            text: text.to_owned(),
        })
    };
    let start_ms = time("start", fields[0])?;
    let end_ms = time("end", fields[1])?;
    if end_ms <= start_ms {
        return Err(PlanError::EmptyContact {
            line,
            start_ms,
            end_ms,
        });
    }
    let from = node_at(fields[2], line)?;
    let to = node_at(fields[3], line)?;
    if from == to {
        return Err(PlanError::SelfContact { line, node: from });
    }
    let rate_bytes_per_s = match fields[4] {
        "unlimited" => None,
        t => match t.parse::<u64>() {
            Ok(r) if r > 0 && t.bytes().all(|b| b.is_ascii_digit()) => Some(r),
            _ => {
                return Err(PlanError::BadRate {
                    line,
                    text: t.to_owned(),
                });
            }
        },
    };
    let delay_ms = match fields.get(5) {
        None => 0,
        Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => {
            t.parse::<u64>().map_err(|_| PlanError::BadDelay {
                line,
                text: (*t).to_owned(),
            })?
        }
        Some(t) => {
            return Err(PlanError::BadDelay {
                line,
                text: (*t).to_owned(),
            });
        }
    };
    Ok(RawContact {
        line,
        c: PlannedContact {
            start_ms,
            end_ms,
            from,
            to,
            rate_bytes_per_s,
            delay_ms,
        },
    })
}

/// Reads every line: the epoch (if any) and the contacts, times relative.
fn parse_lines(text: &str) -> Result<(Option<u64>, Vec<RawContact>), PlanError> {
    let mut epoch = None;
    let mut raw = Vec::new();
    for (i, full) in text.lines().enumerate() {
        let line = i + 1;
        if full.len() > MAX_LINE_BYTES {
            return Err(PlanError::LineTooLong { line });
        }
        let content = full.split_once('#').map_or(full, |(c, _)| c);
        let fields: Vec<&str> = content.split_ascii_whitespace().collect();
        let Some((word, rest)) = fields.split_first() else {
            continue;
        };
        match *word {
            "epoch" => {
                if epoch.is_some() {
                    return Err(PlanError::DuplicateEpoch { line });
                }
                let [t] = rest else {
                    return Err(PlanError::FieldCount {
                        line,
                        directive: "epoch",
                        expected: "1",
                        found: rest.len(),
                    });
                };
                epoch = Some(parse_seconds_ms(t).ok_or_else(|| PlanError::BadTime {
                    line,
                    field: "epoch",
                    text: (*t).to_owned(),
                })?);
            }
            "contact" => {
                if raw.len() >= MAX_CONTACTS {
                    return Err(PlanError::TooManyContacts { line });
                }
                raw.push(parse_contact(rest, line)?);
            }
            other => {
                return Err(PlanError::UnknownDirective {
                    line,
                    word: other.to_owned(),
                });
            }
        }
    }
    Ok((epoch, raw))
}

impl ContactPlan {
    /// Builds a plan from contacts in any order (sorted here by start, then
    /// end, stable otherwise).
    pub fn from_contacts(mut contacts: Vec<PlannedContact>) -> ContactPlan {
        contacts.sort_by_key(|c| (c.start_ms, c.end_ms));
        ContactPlan { contacts }
    }

    /// Parses the text format (module docs, spec/contact-plan.md).
    /// `default_epoch_ms` (DTN ms) is used when the text has no `epoch`
    /// line. The result is sorted by start time (then end time; equal keys
    /// keep file order).
    ///
    /// # Errors
    /// A [`PlanError`] naming the first bad line.
    pub fn parse(text: &str, default_epoch_ms: u64) -> Result<ContactPlan, PlanError> {
        let (epoch, raw) = parse_lines(text)?;
        let epoch_ms = epoch.unwrap_or(default_epoch_ms);
        let mut contacts = Vec::with_capacity(raw.len());
        for RawContact { line, mut c } in raw {
            let shift = |t: u64| {
                epoch_ms
                    .checked_add(t)
                    .ok_or(PlanError::TimeOverflow { line })
            };
            c.start_ms = shift(c.start_ms)?;
            c.end_ms = shift(c.end_ms)?;
            contacts.push(c);
        }
        Ok(ContactPlan::from_contacts(contacts))
    }

    /// Writes the plan in the text format, with an `epoch` line. Times are
    /// written relative to `epoch_ms`, or to the earliest start if that is
    /// earlier (times are never negative). Node IDs are written as EIDs.
    /// `ContactPlan::parse(&plan.to_text(e), any)` equals `plan` for a
    /// sorted plan.
    pub fn to_text(&self, epoch_ms: u64) -> String {
        let first = self.contacts.iter().map(|c| c.start_ms).min();
        let epoch = first.map_or(epoch_ms, |f| f.min(epoch_ms));
        let mut out = String::with_capacity(32 + self.contacts.len() * 48);
        out.push_str("# spore contact plan (spec/contact-plan.md)\n");
        let _ = writeln!(out, "epoch {}", format_seconds(epoch));
        for c in &self.contacts {
            let rate = c
                .rate_bytes_per_s
                .map_or_else(|| "unlimited".to_owned(), |r| r.to_string());
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "contact {} {} {} {} {} {}",
                format_seconds(c.start_ms - epoch),
                format_seconds(c.end_ms - epoch),
                c.from,
                c.to,
                rate,
                c.delay_ms
            );
        }
        out
    }

    /// Every node named by a contact (sender or receiver), sorted, once.
    pub fn nodes(&self) -> Vec<Eid> {
        let mut v: Vec<Eid> = self
            .contacts
            .iter()
            .flat_map(|c| [c.from.clone(), c.to.clone()])
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eid(s: &str) -> Eid {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_example() {
        let text = "# demo\nepoch 800000000\n\ncontact 0 600 1 2 125000 20\n\
                    contact 0 600 2 1 unlimited # back\n";
        let p = ContactPlan::parse(text, 5).unwrap();
        assert_eq!(p.contacts.len(), 2);
        let c = &p.contacts[0];
        assert_eq!(c.start_ms, 800_000_000_000);
        assert_eq!(c.end_ms, 800_000_600_000);
        assert_eq!(c.from, eid("dtn://n1/"));
        assert_eq!(c.to, eid("dtn://n2/"));
        assert_eq!(c.rate_bytes_per_s, Some(125_000));
        assert_eq!(c.delay_ms, 20);
        assert_eq!(p.contacts[1].rate_bytes_per_s, None);
        assert_eq!(p.contacts[1].delay_ms, 0);
    }

    #[test]
    fn default_epoch_decimals_eids_and_sorting() {
        let text = "contact 12.5 13.0005 dtn://a/x ipn:3.7 10\ncontact 1 2 a_is_not_an_eid 2 1\n";
        let err = ContactPlan::parse(text, 1000).unwrap_err();
        assert!(matches!(err, PlanError::BadNode { line: 2, .. }), "{err}");
        let text = "contact 12.5 13.0005 dtn://a/x ipn:3.7 10\n\tcontact  1 2 0 2 1\n";
        let p = ContactPlan::parse(text, 1000).unwrap();
        assert_eq!(p.contacts[0].start_ms, 2000);
        assert_eq!(p.contacts[0].from, eid("dtn://n0/"));
        assert_eq!(p.contacts[1].start_ms, 13_500);
        assert_eq!(p.contacts[1].end_ms, 14_001, "13.0005 s rounds to 13001 ms");
        assert_eq!(p.contacts[1].from, eid("dtn://a/"));
        assert_eq!(p.contacts[1].to, eid("ipn:3.0"));
        assert_eq!(p.nodes().len(), 4);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize)] = &[
            ("contact 5 5 1 2 10", 1),
            ("\ncontact 6 5 1 2 10", 2),
            ("contact -1 5 1 2 10", 1),
            ("contact NaN 5 1 2 10", 1),
            ("contact 1e3 5000 1 2 10", 1),
            ("contact inf 5 1 2 10", 1),
            ("contact 1. 5 1 2 10", 1),
            ("#x\n#y\ncontact 0 5 1 1 10", 3),
            ("contact 0 5 1 2 0", 1),
            ("contact 0 5 1 2 -4", 1),
            ("contact 0 5 1 2 10 2.5", 1),
            ("contact 0 5 1 2", 1),
            ("contact 0 5 1 2 10 1 extra", 1),
            ("contact 0 5 dtn:none 2 10", 1),
            ("epoch 1\nepoch 2", 2),
            ("epoch", 1),
            ("route 1 2", 1),
            ("contact 0 5 1 2 10\nepoch 18446744073709551", 1),
            ("contact 0 5 99999999999999999999999 2 10", 1),
        ];
        for (text, line) in cases {
            let e = ContactPlan::parse(text, 0).expect_err(text);
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("line {line}:")),
                "{text:?} → {msg}"
            );
        }
    }

    #[test]
    fn long_lines_are_refused() {
        let long = format!("# {}\n", "x".repeat(MAX_LINE_BYTES));
        let e = ContactPlan::parse(&long, 0).unwrap_err();
        assert!(matches!(e, PlanError::LineTooLong { line: 1 }));
        let ok = format!("#{}\n", "x".repeat(MAX_LINE_BYTES - 1));
        assert!(ContactPlan::parse(&ok, 0).unwrap().contacts.is_empty());
    }

    #[test]
    fn node_names() {
        assert_eq!(node_eid("7").unwrap(), eid("dtn://n7/"));
        assert_eq!(node_eid("dtn://x/svc").unwrap(), eid("dtn://x/"));
        assert_eq!(node_eid("ipn:4.2").unwrap(), eid("ipn:4.0"));
        assert!(matches!(
            node_eid("x"),
            Err(PlanError::BadNode { line: 0, .. })
        ));
        assert!(node_eid("").is_err());
        assert!(node_eid("-3").is_err());
    }

    #[test]
    fn text_round_trips() {
        let text = "epoch 10.25\ncontact 0 600 1 2 125000 20\ncontact 0.001 1.5 ipn:3.0 dtn://z/ unlimited\n";
        let p = ContactPlan::parse(text, 0).unwrap();
        for e in [0, 10_250, 10_251, u64::MAX] {
            let back = ContactPlan::parse(&p.to_text(e), 77).unwrap();
            assert_eq!(back, p, "epoch {e}:\n{}", p.to_text(e));
        }
        assert_eq!(format_seconds(12_500), "12.5");
        assert_eq!(format_seconds(1), "0.001");
        assert_eq!(parse_seconds_ms("0.0005"), Some(1));
        assert_eq!(parse_seconds_ms("18446744073709551.615"), Some(u64::MAX));
        assert_eq!(parse_seconds_ms("18446744073709552"), None);
    }

    proptest::proptest! {
        #[test]
        fn random_plans_round_trip(
            epoch in 0u64..1_000_000_000_000,
            raw in proptest::collection::vec(
                (0u64..10_000_000, 1u64..1_000_000, 0u64..20, 1u64..20,
                 proptest::option::of(1u64..1_000_000_000), 0u64..100_000),
                0..30),
        ) {
            let contacts = raw.into_iter().map(|(s, d, f, t, rate, delay)| PlannedContact {
                start_ms: epoch + s,
                end_ms: epoch + s + d,
                from: node_eid(&f.to_string()).unwrap(),
                to: node_eid(&((f + t) % 21 + 21).to_string()).unwrap(),
                rate_bytes_per_s: rate,
                delay_ms: delay,
            }).collect();
            let p = ContactPlan::from_contacts(contacts);
            let back = ContactPlan::parse(&p.to_text(epoch), 0).unwrap();
            proptest::prop_assert_eq!(back, p);
        }

        #[test]
        fn parse_never_panics(text in "[ -~\t\n]{0,200}") {
            let _ = ContactPlan::parse(&text, u64::MAX);
        }
    }
}
