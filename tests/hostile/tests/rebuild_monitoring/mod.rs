//! rebuild-monitoring under hostile conditions: cut connections and signals during a restore from
//! backup, and a killed run's plan.

pub mod faults;
pub mod survive;
