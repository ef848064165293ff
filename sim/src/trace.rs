//! Simulator inputs: connectivity traces and message workloads.
//!
//! Two text formats are read:
//!
//! - The ONE simulator's external events: `<time_s> CONN <a> <b> up|down`
//!   (connectivity) and `<time_s> C <msgid> <from> <to> <size_bytes>
//!   [<response_size>]` (message creation; the response size is ignored).
//!   `#` starts a comment; blank lines are skipped; node names are integers
//!   (node `i` is the EID `dtn://n{i}/`, see [`node_eid`]).
//! - The node's contact-plan format (`contact <start_s> <end_s> <from> <to>
//!   <rate|unlimited> [<delay_ms>]`, spec/contact-plan.md), detected by
//!   content and read with `ContactPlan::parse`: a link is up while either
//!   direction is planned.
//!
//! Times are kept as virtual microseconds (`u64`) from the trace origin.

use spore::bundle::Eid;
use spore::routing::plan::ContactPlan;
use std::collections::BTreeMap;

/// Most nodes a trace may name (node IDs are `0..MAX_NODES`).
pub const MAX_NODES: u32 = 1 << 20;

/// A line of input that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A malformed line; `line` counts from 1.
    #[error("line {line}: {msg}")]
    Line {
        /// Line number (1-based).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A format the simulator cannot read yet.
    #[error("{0}")]
    Unsupported(String),
}

/// One connectivity change of an undirected link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnEvent {
    /// Virtual time, µs.
    pub time_us: u64,
    /// One end.
    pub a: u32,
    /// The other end.
    pub b: u32,
    /// `true` for up, `false` for down.
    pub up: bool,
}

/// One contact: a link up over `[start_us, end_us]` (both ends inclusive,
/// `start_us == end_us` for an instant contact), in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Sender.
    pub from: u32,
    /// Receiver.
    pub to: u32,
    /// Start, µs.
    pub start_us: u64,
    /// End, µs.
    pub end_us: u64,
    /// One-way delay, µs.
    pub delay_us: u64,
}

/// A connectivity trace: events in time order (stable for equal times).
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Connectivity changes, sorted by time, file order kept for ties.
    pub events: Vec<ConnEvent>,
    /// Number of nodes: highest node ID named + 1.
    pub nodes: u32,
    /// Time of the last event, µs.
    pub end_us: u64,
}

/// A message creation event (`C` line) of a workload file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// Creation time, µs.
    pub time_us: u64,
    /// The ONE message ID (free text).
    pub id: String,
    /// Source node.
    pub from: u32,
    /// Destination node.
    pub to: u32,
    /// Payload size, bytes.
    pub size: u64,
}

/// The EID of node `i`: `dtn://n{i}/`.
pub fn node_eid(i: u32) -> Eid {
    // A node ID made of letters and digits is always a valid dtn EID.
    format!("dtn://n{i}/")
        .parse()
        .expect("dtn://n<digits>/ is a valid EID")
}

/// Parses a time in seconds (decimal) into µs.
fn parse_time(s: &str, line: usize) -> Result<u64, ParseError> {
    let t: f64 = s
        .parse()
        .map_err(|_| err(line, format!("bad time {s:?}")))?;
    if !(0.0..=1e12).contains(&t) {
        return Err(err(line, format!("time {s:?} out of range (0..1e12 s)")));
    }
    Ok((t * 1e6).round() as u64)
}

fn parse_node(s: &str, line: usize) -> Result<u32, ParseError> {
    match s.parse::<u32>() {
        Ok(n) if n < MAX_NODES => Ok(n),
        _ => Err(err(
            line,
            format!("bad node {s:?} (expected an integer below {MAX_NODES})"),
        )),
    }
}

fn err(line: usize, msg: String) -> ParseError {
    ParseError::Line { line, msg }
}

/// The meaningful lines of `text`: (1-based number, whitespace-split fields),
/// comments and blank lines left out.
fn lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.split('#').next().unwrap_or("");
        let f: Vec<&str> = l.split_whitespace().collect();
        (!f.is_empty()).then_some((i + 1, f))
    })
}

/// True if `text` looks like a contact plan (its first meaningful line
/// starts with `contact` or `epoch`).
pub fn is_contact_plan(text: &str) -> bool {
    lines(text).next().is_some_and(|(_, f)| {
        f[0].eq_ignore_ascii_case("contact") || f[0].eq_ignore_ascii_case("epoch")
    })
}

/// Parses a connectivity trace in either format (detected by content).
///
/// # Errors
/// [`ParseError::Line`] with the line number of the first bad line (a `C`
/// line is refused here: messages go in the workload file);
/// [`ParseError::Unsupported`] for a contact plan that does not parse
/// (the plan parser's message names the line) or names nodes other than
/// `dtn://n<i>/`.
pub fn parse_trace(text: &str) -> Result<Trace, ParseError> {
    if is_contact_plan(text) {
        return parse_plan(text);
    }
    let mut events = Vec::new();
    for (line, f) in lines(text) {
        if f.len() < 2 || !f[1].eq_ignore_ascii_case("CONN") {
            return Err(err(
                line,
                format!(
                    "expected `<time_s> CONN <a> <b> up|down`, got {:?}",
                    f.join(" ")
                ),
            ));
        }
        if f.len() != 5 {
            return Err(err(line, format!("CONN needs 5 fields, got {}", f.len())));
        }
        let (a, b) = (parse_node(f[2], line)?, parse_node(f[3], line)?);
        if a == b {
            return Err(err(line, format!("link from node {a} to itself")));
        }
        let up = match f[4].to_ascii_lowercase().as_str() {
            "up" => true,
            "down" => false,
            s => return Err(err(line, format!("expected up or down, got {s:?}"))),
        };
        let time_us = parse_time(f[0], line)?;
        events.push(ConnEvent { time_us, a, b, up });
    }
    // Stable: events at the same time keep their file order.
    events.sort_by_key(|e| e.time_us);
    let nodes = events.iter().map(|e| e.a.max(e.b) + 1).max().unwrap_or(0);
    let end_us = events.last().map_or(0, |e| e.time_us);
    Ok(Trace {
        events,
        nodes,
        end_us,
    })
}

/// Parses a workload: `<time_s> C <msgid> <from> <to> <size> [<resp_size>]`
/// lines, sorted by time (file order for ties).
///
/// # Errors
/// [`ParseError::Line`] with the number of the first bad line.
pub fn parse_workload(text: &str) -> Result<Vec<MessageEvent>, ParseError> {
    let mut out = Vec::new();
    for (line, f) in lines(text) {
        if f.len() < 2 || f[1] != "C" {
            return Err(err(
                line,
                format!(
                    "expected `<time_s> C <msgid> <from> <to> <size>`, got {:?}",
                    f.join(" ")
                ),
            ));
        }
        if !(6..=7).contains(&f.len()) {
            return Err(err(line, format!("C needs 6 or 7 fields, got {}", f.len())));
        }
        let (from, to) = (parse_node(f[3], line)?, parse_node(f[4], line)?);
        if from == to {
            return Err(err(line, format!("message from node {from} to itself")));
        }
        let size = f[5]
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= 1 << 30)
            .ok_or_else(|| err(line, format!("bad size {:?} (0..=1 GiB)", f[5])))?;
        out.push(MessageEvent {
            time_us: parse_time(f[0], line)?,
            id: f[2].to_owned(),
            from,
            to,
            size,
        });
    }
    out.sort_by_key(|m| m.time_us);
    Ok(out)
}

/// Node index of `dtn://n{i}/`.
fn node_index(eid: &Eid) -> Result<u32, ParseError> {
    let s = eid.to_string();
    s.strip_prefix("dtn://n")
        .and_then(|r| r.strip_suffix('/'))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n < MAX_NODES)
        .ok_or_else(|| {
            ParseError::Unsupported(format!(
                "plan node {s} is not dtn://n<i>/ (use integer node names)"
            ))
        })
}

/// The plan's `epoch` line in ms (0 without one); the plan parser has
/// already checked its syntax.
fn plan_epoch_ms(text: &str) -> u64 {
    lines(text)
        .find(|(_, f)| f[0].eq_ignore_ascii_case("epoch") && f.len() == 2)
        .and_then(|(_, f)| f[1].parse::<f64>().ok())
        .map_or(0, |s| (s * 1000.0).round() as u64)
}

/// A contact plan as a trace: the link between two nodes is up while
/// either direction is planned (overlapping intervals merged). Virtual time
/// 0 is the plan's epoch. Per-contact rates and delays are not used by the
/// link model (the run's `--bandwidth` and `--delay` apply).
fn parse_plan(text: &str) -> Result<Trace, ParseError> {
    let plan = ContactPlan::parse(text, 0)
        .map_err(|e| ParseError::Unsupported(format!("contact plan: {e}")))?;
    let epoch_ms = plan_epoch_ms(text);
    let mut spans: BTreeMap<(u32, u32), Vec<(u64, u64)>> = BTreeMap::new();
    for c in &plan.contacts {
        let (a, b) = (node_index(&c.from)?, node_index(&c.to)?);
        let us = |ms: u64| ms.saturating_sub(epoch_ms).saturating_mul(1000);
        spans
            .entry((a.min(b), a.max(b)))
            .or_default()
            .push((us(c.start_ms), us(c.end_ms)));
    }
    let mut events = Vec::new();
    for ((a, b), mut v) in spans {
        v.sort_unstable();
        let mut span = |(start, end): (u64, u64)| {
            for (time_us, up) in [(start, true), (end, false)] {
                events.push(ConnEvent { time_us, a, b, up });
            }
        };
        let mut cur = v[0];
        for &(s, e) in &v[1..] {
            if s <= cur.1 {
                cur.1 = cur.1.max(e);
                continue;
            }
            span(cur);
            cur = (s, e);
        }
        span(cur);
    }
    events.sort_by_key(|e| (e.time_us, !e.up));
    let nodes = events.iter().map(|e| e.a.max(e.b) + 1).max().unwrap_or(0);
    let end_us = events.last().map_or(0, |e| e.time_us);
    Ok(Trace {
        events,
        nodes,
        end_us,
    })
}

impl Trace {
    /// The contacts of the trace, both directions of every link, sorted by
    /// start time. An `up` of a link already up and a `down` of a link not
    /// up are ignored; a link still up at the end closes at
    /// [`Trace::end_us`]. `delay_us` is given to every contact.
    pub fn contacts(&self, delay_us: u64) -> Vec<Contact> {
        let mut open: std::collections::HashMap<(u32, u32), u64> = Default::default();
        let mut out = Vec::new();
        let mut close = |a: u32, b: u32, start_us: u64, end_us: u64| {
            for (from, to) in [(a, b), (b, a)] {
                out.push(Contact {
                    from,
                    to,
                    start_us,
                    end_us,
                    delay_us,
                });
            }
        };
        for e in &self.events {
            let key = (e.a.min(e.b), e.a.max(e.b));
            if e.up {
                open.entry(key).or_insert(e.time_us);
            } else if let Some(start) = open.remove(&key) {
                close(key.0, key.1, start, e.time_us);
            }
        }
        let mut rest: Vec<_> = open.into_iter().collect();
        rest.sort();
        for ((a, b), start) in rest {
            close(a, b, start, self.end_us);
        }
        out.sort_by_key(|c| (c.start_us, c.from, c.to));
        out
    }
}
