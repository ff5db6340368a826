//! The farm master: a scheduler core without I/O, the gRPC services that adapt it to the
//! network, and the spawner that starts and supervises local worker processes.

pub mod core;
