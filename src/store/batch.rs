//! Group commit: writes that arrive at the same moment share one store round trip.
//!
//! A [`Batcher`] owns one background task. Callers hand it an item and wait for that item's
//! own result; the task takes every item queued so far (up to `max_batch`) and passes them
//! to the flush function in one call, whose results go back to their callers in order. When
//! the store is idle a lone item is flushed at once (no timer, no added wait); under load the
//! items that queue while earlier batches are in flight form the next batch, so the fixed
//! cost of a store call (a script's set-up, a round trip, a transaction) is paid once per
//! batch instead of once per item.
//!
//! What it must never do: reorder the results (item *i* gets result *i*), lose a caller (a
//! flush that panics or answers short fails its callers with [`BatchError`], it does not leave
//! them waiting), or know what it is writing (the flush function does).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

/// The batcher's task is gone or a flush failed without answering this item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the batched write failed without an answer (the writer task stopped or panicked)")]
pub struct BatchError;

type Job<T, R> = (T, oneshot::Sender<R>);

/// A handle to one group-commit writer. Cheap to clone; the task stops when the last handle
/// is dropped and the queue is empty.
pub struct Batcher<T, R> {
    queue: mpsc::Sender<Job<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Start the writer task (needs a Tokio runtime). `flush` gets at most `max_batch` items
    /// and must answer with exactly one result per item, in order; at most `in_flight`
    /// flushes run at once (more than one keeps the store busy while the next batch forms).
    pub fn spawn<F, Fut>(max_batch: usize, in_flight: usize, flush: F) -> Batcher<T, R>
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        // Room for a few batches: beyond that, `submit` waits (back-pressure on callers).
        let (queue, rx) = mpsc::channel(max_batch * 16);
        tokio::spawn(run(rx, max_batch, in_flight.max(1), flush));
        Batcher { queue }
    }

    /// Queue `item` and wait for its result.
    pub async fn submit(&self, item: T) -> Result<R, BatchError> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((item, tx)).await.map_err(|_| BatchError)?;
        rx.await.map_err(|_| BatchError)
    }
}

async fn run<T, R, F, Fut>(
    mut rx: mpsc::Receiver<Job<T, R>>,
    max_batch: usize,
    in_flight: usize,
    flush: F,
) where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<R>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut jobs = Vec::with_capacity(max_batch);
    loop {
        // Wait for a free slot first: the items that arrive meanwhile join this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut jobs, max_batch).await == 0 {
            return; // every handle dropped and the queue drained
        }
        let (items, callers): (Vec<T>, Vec<oneshot::Sender<R>>) = jobs.drain(..).unzip();
        let done = flush(items);
        tokio::spawn(async move {
            let results = done.await;
            // A short answer drops the remaining callers' senders: they get `BatchError`.
            for (caller, result) in callers.into_iter().zip(results) {
                let _ = caller.send(result); // the caller may have gone away; its write stands
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn each_caller_gets_its_own_result_and_concurrent_items_share_a_flush() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Batcher::spawn(8, 1, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                // Slow enough that the other callers queue behind the first flush.
                tokio::time::sleep(Duration::from_millis(20)).await;
                items.into_iter().map(|i| i * 10).collect()
            }
        });
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { (i, b.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, result) = call.await.unwrap();
            assert_eq!(result, Ok(i * 10));
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(
            sizes.iter().all(|&n| n <= 8),
            "batches over the limit: {sizes:?}"
        );
        assert!(sizes.len() < 20, "nothing was batched: {sizes:?}");
    }

    #[tokio::test]
    async fn a_lone_item_is_flushed_at_once() {
        let batcher = Batcher::spawn(64, 1, |items: Vec<u32>| async move { items });
        let started = std::time::Instant::now();
        assert_eq!(batcher.submit(7).await, Ok(7));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_short_answer_or_a_panic_fails_the_callers_instead_of_hanging() {
        let short = Batcher::spawn(1, 1, |_: Vec<u32>| async { Vec::<u32>::new() });
        assert_eq!(short.submit(1).await, Err(BatchError));
        let panics = Batcher::spawn(1, 1, |_: Vec<u32>| async {
            panic!("flush failed");
            #[allow(unreachable_code)]
            Vec::<u32>::new()
        });
        assert_eq!(panics.submit(1).await, Err(BatchError));
        // The writer goes on after a failed flush.
        assert_eq!(panics.submit(2).await, Err(BatchError));
    }
}
