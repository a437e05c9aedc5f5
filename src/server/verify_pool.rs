//! Password checks (argon2id) on a small, fixed set of threads.
//!
//! One verification takes a core for tens of milliseconds and 19 MiB of memory. Run on
//! tokio's blocking pool, a flood of logins spreads them over many short-lived threads, and
//! the allocator keeps each thread's freed 19 MiB for reuse: measured here, 1,000 logins in
//! 10 s took the node to 1 GB of RSS with only two verifications running at any moment. On
//! `threads` long-lived threads the memory is bounded by `threads × 19 MiB`, and a login that
//! cannot get a thread within its wait is told to retry instead of queueing without bound.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

struct Job {
    hash: String,
    password: String,
    reply: oneshot::Sender<bool>,
}

/// Every slot stayed taken for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

pub struct VerifyPool {
    jobs: SyncSender<Job>,
    slots: Arc<Semaphore>,
    /// Logins waiting for a thread, and how many may: past it a login is refused at once, so
    /// a flood cannot fill `server.max_concurrent_requests` with waiting logins and starve the
    /// rest of the API.
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

impl VerifyPool {
    /// `threads` verifier threads (at least 1). They end when the pool is dropped.
    pub fn new(threads: usize) -> VerifyPool {
        let threads = threads.max(1);
        let (jobs, rx) = sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("argon2-verify-{i}"))
                .spawn(move || work(&rx));
        }
        VerifyPool {
            jobs,
            slots: Arc::new(Semaphore::new(threads)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting: threads * 32,
        }
    }

    /// One per core, at most 8: verifications beyond the cores only wait for CPU anyway.
    pub fn per_core() -> VerifyPool {
        VerifyPool::new(std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8)))
    }

    /// Whether `password` matches the argon2 PHC string `hash`; `Busy` when no thread came
    /// free within `wait`.
    pub async fn verify(
        &self,
        hash: String,
        password: String,
        wait: Duration,
    ) -> Result<bool, Busy> {
        use std::sync::atomic::Ordering;
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(Busy);
        }
        let permit = tokio::time::timeout(wait, self.slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.map_err(|_| Busy)?.map_err(|_| Busy)?;
        let (reply, answer) = oneshot::channel();
        // Never blocks: the permit guarantees a free place in the channel.
        self.jobs
            .try_send(Job {
                hash,
                password,
                reply,
            })
            .map_err(|_| Busy)?;
        answer.await.map_err(|_| Busy)
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let ok = crate::credentials::verify_password(&job.hash, &job.password);
        let _ = job.reply.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_and_reports_busy() {
        let hash = crate::credentials::hash_password("pw").unwrap();
        let pool = VerifyPool::new(1);
        let long = Duration::from_secs(30);
        assert_eq!(pool.verify(hash.clone(), "pw".into(), long).await, Ok(true));
        assert_eq!(
            pool.verify(hash.clone(), "no".into(), long).await,
            Ok(false)
        );
        // Hold the only slot: the next caller gives up after its wait.
        let _held = pool.slots.acquire().await.unwrap();
        assert_eq!(
            pool.verify(hash, "pw".into(), Duration::from_millis(50))
                .await,
            Err(Busy)
        );
    }
}
