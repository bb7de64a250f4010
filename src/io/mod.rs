//! The only module that calls the kernel: the per-shard compio runtime, file operations on
//! log files, the socket listener, and splicing file bytes into sockets.
//!
//! Architecture Invariant: nothing outside `io/` issues a syscall on the data path. The rest of
//! the broker sees owned buffers (`bytes::Bytes`), `LogFile` handles and futures.
//! Control-plane file work (creating folders, renaming, writing checkpoints) uses `fs`, which
//! blocks briefly; it never runs per record.

pub mod crash;
pub mod fault;
pub mod file;
pub mod fs;
pub mod net;
pub mod runtime;
pub mod splice;

pub use file::LogFile;
