//! Helpers shared by the simulator's integration tests.

use spore_sim::report::Report;

/// The report as JSON without its wall-clock fields (two runs of the same
/// case must give the same string).
pub fn deterministic(mut r: Report) -> String {
    r.events_per_s = 0.0;
    r.wall_s = 0.0;
    serde_json::to_string(&r).unwrap()
}
