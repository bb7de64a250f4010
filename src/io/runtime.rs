//! Building one shard's runtime: a compio (io_uring) runtime pinned to one core.

use std::collections::HashSet;

use crate::config::limits;

/// Builds the runtime of the shard that runs on `core`. Rings are kept small (the machine's
/// `RLIMIT_MEMLOCK` counts ring memory for non-root users) and task work is run cooperatively,
/// which is the cheap mode for a single-threaded ring.
pub fn build(core: usize) -> std::io::Result<compio::runtime::Runtime> {
    let mut proactor = compio::driver::ProactorBuilder::new();
    proactor.capacity(limits::RING_ENTRIES).coop_taskrun(true).taskrun_flag(true).thread_pool_limit(limits::IO_WORKERS_MAX as usize);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    compio::runtime::RuntimeBuilder::new().with_proactor(proactor).thread_affinity(HashSet::from([core % cores])).build()
}

/// Spawns a task on the current shard that runs to completion on its own.
pub fn spawn_detached<F: std::future::Future<Output = ()> + 'static>(future: F) {
    compio::runtime::spawn(future).detach();
}

/// Sleeps on the current shard's timer.
pub async fn sleep(duration: std::time::Duration) {
    compio::time::sleep(duration).await;
}

/// Milliseconds since the Unix epoch, the unit of Kafka timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
