//! cicd: the command line and web dashboard of cicd-operator. The pure
//! parts (argument parsing, formatting, the DAG drawing) are tested
//! offline; `client`, `ops`, `logs` and `dashboard` talk to the cluster.

pub mod args;
pub mod cli;
pub mod client;
pub mod dashboard;
pub mod describe;
pub mod format;
pub mod graph;
pub mod logs;
pub mod ops;
pub mod progress;
pub mod runs;
