//! A single-threaded wake-up signal: tasks wait for the next `notify`. Hand-written because
//! the client's tasks all share one thread, where a lock-free or `Send` primitive would only
//! add cost.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    /// Wakes every task waiting now.
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// A future that completes at the next `notify` after this call.
    pub fn notified(&self) -> Notified<'_> {
        Notified { notify: self, generation: self.generation.get() }
    }

    /// Waits for a `notify` or until `deadline`, whichever comes first.
    pub async fn wait_until(&self, deadline: Option<Instant>) {
        let notified = self.notified();
        match deadline {
            None => notified.await,
            Some(at) => {
                let sleep = compio::time::sleep(at.saturating_duration_since(Instant::now()).max(Duration::from_micros(1)));
                futures_util::future::select(pin!(notified), pin!(sleep)).await;
            }
        }
    }
}

pub struct Notified<'a> {
    notify: &'a Notify,
    generation: u64,
}

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        let mut waiters = self.notify.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
