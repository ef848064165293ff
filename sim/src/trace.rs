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
    /// Rates and delay of the contact that this `up` starts, when the trace
    /// gives them (contact plans); `None` = the run's `--bandwidth` and
    /// `--delay`.
    pub params: Option<LinkParams>,
}

/// A contact's link parameters, from a contact plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// Rate from `a` to `b`, bytes/s; `None` = unlimited.
    pub rate_ab: Option<u64>,
    /// Rate from `b` to `a`, bytes/s; `None` = unlimited.
    pub rate_ba: Option<u64>,
    /// One-way delay, µs.
    pub delay_us: u64,
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
    /// Rate, bytes/s; `None` = unlimited (see [`Trace::contacts_with`]).
    pub rate: Option<u64>,
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
        events.push(ConnEvent {
            time_us,
            a,
            b,
            up,
            params: None,
        });
    }
    // Stable: events at the same time keep their file order.
    events.sort_by_key(|e| e.time_us);
    Ok(Trace::from_sorted(events))
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

/// One planned contact of a link, in the link's (low, high) node order.
#[derive(Clone, Copy)]
struct PlanSpan {
    start_us: u64,
    end_us: u64,
    /// `true` if the contact goes from the low node to the high one.
    low_to_high: bool,
    rate: Option<u64>,
    delay_us: u64,
}

/// A contact plan as a trace: the link between two nodes is up while
/// either direction is planned (overlapping intervals merged). Virtual time
/// 0 is the plan's epoch. Each `up` carries the rates and delay of the
/// contacts it starts ([`LinkParams`]): per direction the first planned
/// contact's rate (a direction not planned in the span takes the other
/// direction's), and the first contact's delay.
fn parse_plan(text: &str) -> Result<Trace, ParseError> {
    let plan = ContactPlan::parse(text, 0)
        .map_err(|e| ParseError::Unsupported(format!("contact plan: {e}")))?;
    let epoch_ms = plan_epoch_ms(text);
    let mut spans: BTreeMap<(u32, u32), Vec<PlanSpan>> = BTreeMap::new();
    for c in &plan.contacts {
        let (a, b) = (node_index(&c.from)?, node_index(&c.to)?);
        let us = |ms: u64| ms.saturating_sub(epoch_ms).saturating_mul(1000);
        spans
            .entry((a.min(b), a.max(b)))
            .or_default()
            .push(PlanSpan {
                start_us: us(c.start_ms),
                end_us: us(c.end_ms),
                low_to_high: a < b,
                rate: c.rate_bytes_per_s,
                delay_us: c.delay_ms.saturating_mul(1000),
            });
    }
    let mut events = Vec::new();
    for ((a, b), mut v) in spans {
        v.sort_unstable_by_key(|s| (s.start_us, s.end_us));
        for (start, end, params) in merge_spans(&v) {
            for (time_us, up) in [(start, true), (end, false)] {
                let params = up.then_some(params);
                events.push(ConnEvent {
                    time_us,
                    a,
                    b,
                    up,
                    params,
                });
            }
        }
    }
    events.sort_by_key(|e| (e.time_us, !e.up));
    Ok(Trace::from_sorted(events))
}

/// Merges overlapping planned contacts of one link (sorted by start) into
/// up intervals with their [`LinkParams`] (`a` = the low node).
fn merge_spans(v: &[PlanSpan]) -> Vec<(u64, u64, LinkParams)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let (start, mut end) = (v[i].start_us, v[i].end_us);
        let mut rate: [Option<Option<u64>>; 2] = [None, None];
        let mut j = i;
        while j < v.len() && (j == i || v[j].start_us <= end) {
            end = end.max(v[j].end_us);
            let dir = usize::from(!v[j].low_to_high);
            rate[dir] = rate[dir].or(Some(v[j].rate));
            j += 1;
        }
        let ab = rate[0].or(rate[1]).flatten();
        let ba = rate[1].or(rate[0]).flatten();
        let params = LinkParams {
            rate_ab: ab,
            rate_ba: ba,
            delay_us: v[i].delay_us,
        };
        out.push((start, end, params));
        i = j;
    }
    out
}

impl Trace {
    /// A trace of `events` already in time order (node count and end time
    /// derived from them).
    fn from_sorted(events: Vec<ConnEvent>) -> Trace {
        let nodes = events.iter().map(|e| e.a.max(e.b) + 1).max().unwrap_or(0);
        let end_us = events.last().map_or(0, |e| e.time_us);
        Trace {
            events,
            nodes,
            end_us,
        }
    }

    /// The contacts of the trace, both directions of every link, sorted by
    /// start time. An `up` of a link already up and a `down` of a link not
    /// up are ignored; a link still up at the end closes at
    /// [`Trace::end_us`]. A contact's delay is its [`LinkParams`] delay if
    /// the trace gives one, else `delay_us`.
    pub fn contacts(&self, delay_us: u64) -> Vec<Contact> {
        self.contacts_with(None, delay_us)
    }

    /// As [`Trace::contacts`], also giving each contact its rate: the
    /// [`LinkParams`] rate of its direction if the trace gives one, else
    /// `bandwidth` (bytes/s, `None` = unlimited).
    pub fn contacts_with(&self, bandwidth: Option<u64>, delay_us: u64) -> Vec<Contact> {
        type Open = (u64, Option<LinkParams>);
        let mut open: std::collections::HashMap<(u32, u32), Open> = Default::default();
        let mut out = Vec::new();
        let mut close = |a: u32, b: u32, (start_us, params): Open, end_us: u64| {
            let delay_us = params.map_or(delay_us, |p| p.delay_us);
            for (from, to) in [(a, b), (b, a)] {
                let rate = match params {
                    Some(p) if from == a => p.rate_ab,
                    Some(p) => p.rate_ba,
                    None => bandwidth,
                };
                out.push(Contact {
                    from,
                    to,
                    start_us,
                    end_us,
                    delay_us,
                    rate,
                });
            }
        };
        for e in &self.events {
            let key = (e.a.min(e.b), e.a.max(e.b));
            if e.up {
                // Parameters in (low, high) order.
                let params = e.params.map(|p| match e.a < e.b {
                    true => p,
                    false => LinkParams {
                        rate_ab: p.rate_ba,
                        rate_ba: p.rate_ab,
                        delay_us: p.delay_us,
                    },
                });
                open.entry(key).or_insert((e.time_us, params));
            } else if let Some(start) = open.remove(&key) {
                close(key.0, key.1, start, e.time_us);
            }
        }
        let mut rest: Vec<_> = open.into_iter().collect();
        rest.sort_by_key(|(k, (t, _))| (*k, *t));
        for ((a, b), start) in rest {
            close(a, b, start, self.end_us);
        }
        out.sort_by_key(|c| (c.start_us, c.from, c.to));
        out
    }
}
