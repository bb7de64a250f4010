//! The request-bytes budget: Kafka's `queued.max.request.bytes`, bytes of requests read but
//! not yet answered. Each shard holds its share of the broker-wide figure (the figure divided
//! by the number of shards) and each connection may hold at most
//! `limits::CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX` of it, so no client, pipelining as it
//! likes, makes the broker hold more than that.
//!
//! What is counted is bytes really received, not what a size prefix claims (a stalled prefix
//! then holds a read's worth, not 100 MB): a connection's reading permit grows to cover its
//! buffer and the next read before the read is issued, and each complete request is split off
//! it into a permit of its own that lives until its response is written. A read that starts a
//! request waits while the budget is spent (backpressure: TCP then pushes back on the client)
//! until answered requests give bytes back; the reads that finish a request already begun do
//! not wait, so partial requests can never hold the budget against each other. As in Kafka's
//! memory pool, a request may overshoot what is left (one larger than the whole budget still
//! gets in): the budget bounds how many requests start, by their bytes.
//!
//! Shard-local (`Rc`, `Cell`): no atomic and no lock.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// One shard's share of the budget.
pub struct RequestBudget {
    capacity: u64,
    used: Cell<u64>,
    /// Connections waiting for bytes to come back.
    waiters: RefCell<Vec<flume::Sender<()>>>,
}

/// One connection's bytes held, against its limit.
pub struct ConnectionBudget {
    used: Cell<u64>,
    max: u64,
}

impl ConnectionBudget {
    pub fn new(max: u64) -> Rc<ConnectionBudget> {
        Rc::new(ConnectionBudget { used: Cell::new(0), max })
    }
}

/// Bytes held in the budget: a connection's read buffer, or one request until its response
/// is written. Given back on drop.
pub struct Permit {
    bytes: u64,
    shard: Rc<RequestBudget>,
    connection: Rc<ConnectionBudget>,
}

impl RequestBudget {
    pub fn new(capacity: u64) -> Rc<RequestBudget> {
        Rc::new(RequestBudget { capacity, used: Cell::new(0), waiters: RefCell::new(Vec::new()) })
    }

    pub fn used(&self) -> u64 {
        self.used.get()
    }

    /// An empty permit for `connection`, to grow as it reads.
    pub fn permit(self: &Rc<Self>, connection: &Rc<ConnectionBudget>) -> Permit {
        Permit { bytes: 0, shard: self.clone(), connection: connection.clone() }
    }

    fn wake_waiters(&self) {
        // Every waiter checks again; those that still do not fit wait anew. Waiters are
        // connections of this shard that stopped reading.
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.try_send(());
        }
    }
}

impl Permit {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// As Kafka's `SimpleMemoryPool` in its default, non-strict mode: room is there while
    /// less than the capacity is used, whatever the size asked (a request larger than the
    /// whole budget still gets in), or when only this permit's own bytes are held.
    fn has_room(&self) -> bool {
        let (shard, conn) = (self.shard.used.get(), self.connection.used.get());
        (shard == self.bytes || shard < self.shard.capacity) && (conn == self.bytes || conn < self.connection.max)
    }

    /// Grows the permit to `bytes`, first waiting until the shard's share and the
    /// connection's limit both have room: for reads that start a request.
    pub async fn grow_to(&mut self, bytes: u64) {
        if bytes <= self.bytes {
            return;
        }
        while !self.has_room() {
            let (tx, rx) = flume::bounded(1);
            self.shard.waiters.borrow_mut().push(tx);
            let _ = rx.recv_async().await;
        }
        self.grow_now(bytes);
    }

    /// Grows the permit to `bytes` at once: for the rest of a request already begun, so that
    /// requests under way always finish reading (connections waiting on each other's partial
    /// requests would never give bytes back).
    pub fn grow_now(&mut self, bytes: u64) {
        let Some(more) = bytes.checked_sub(self.bytes).filter(|&m| m > 0) else { return };
        self.shard.used.set(self.shard.used.get() + more);
        self.connection.used.set(self.connection.used.get() + more);
        self.bytes = bytes;
    }

    /// Moves `bytes` of this permit (at most all of it) into a new one.
    pub fn split(&mut self, bytes: u64) -> Permit {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Permit { bytes, shard: self.shard.clone(), connection: self.connection.clone() }
    }

    /// Gives back everything above `bytes`.
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            drop(self.split(self.bytes - bytes));
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        self.shard.used.set(self.shard.used.get() - self.bytes);
        self.connection.used.set(self.connection.used.get() - self.bytes);
        self.shard.wake_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn connections_wait_for_room_and_a_lone_large_request_is_served() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let budget = RequestBudget::new(100);
            let (a, b) = (ConnectionBudget::new(80), ConnectionBudget::new(80));
            let mut reading_a = budget.permit(&a);
            reading_a.grow_to(60).await;
            let held = reading_a.split(60);
            // Room while under the limits, whatever the size: 60 + 30 > 80 still gets in.
            reading_a.grow_to(30).await;
            let held_more = reading_a.split(30);
            // The connection's own limit: 90 held, at least 80.
            assert!(compio::time::timeout(Duration::from_millis(20), reading_a.grow_to(10)).await.is_err(), "a connection past its limit must wait");
            drop(held_more);
            // The shard's share: 60 held and another connection's 45 make 105, at least 100.
            let mut other = budget.permit(&ConnectionBudget::new(80));
            other.grow_to(45).await;
            let mut reading_b = budget.permit(&b);
            assert!(compio::time::timeout(Duration::from_millis(20), reading_b.grow_to(50)).await.is_err());
            let waiting = compio::runtime::spawn(async move {
                reading_b.grow_to(50).await;
                reading_b
            });
            compio::time::sleep(Duration::from_millis(5)).await;
            // The rest of a request under way does not wait, even past the budget.
            other.grow_now(60);
            assert_eq!(budget.used(), 120);
            drop(other);
            let reading_b = waiting.await.unwrap();
            assert_eq!(budget.used(), 110, "the waiting connection got in once bytes came back");
            drop(reading_b);
            drop(held);
            // A request larger than everything grows while only its own bytes are held.
            reading_a.grow_to(1_000).await;
            assert_eq!(budget.used(), 1_000);
            reading_a.shrink_to(10);
            assert_eq!(budget.used(), 10);
            drop(reading_a);
            assert_eq!(budget.used(), 0);
        });
    }
}
