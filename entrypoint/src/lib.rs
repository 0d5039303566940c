pub mod termination;
