//! Values the unit tests of several modules share.

use crate::plan::{analyze, parse};
use crate::report::EnvReport;

/// `lab`, checked, with the drift of the `bpg_mixed` plan fixture (two changes).
pub(crate) fn drifted() -> EnvReport {
    let plan = parse(include_bytes!("../tests/fixtures/plans/bpg_mixed.json")).unwrap();
    let a = analyze(&plan, &Default::default());
    EnvReport::checked("lab", Some(2), a.resources, Vec::new(), Vec::new())
}
