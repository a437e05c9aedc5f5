//! A bounded, paced load generator for failover tests: N requests per second for a fixed
//! time, every outcome recorded with when it happened, so a test can say "no GET failed" and
//! "these POSTs failed, inside the outage window".

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which kind of request (e.g. "GET summary", "POST report").
    pub kind: &'static str,
    /// Since the start of the run.
    pub at: Duration,
    pub latency: Duration,
    /// `Err` carries what went wrong (status code and body, or the transport error).
    pub result: Result<(), String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub elapsed: Duration,
}

impl Report {
    pub fn total(&self, kind: &str) -> usize {
        self.outcomes.iter().filter(|o| o.kind == kind).count()
    }

    pub fn failures(&self, kind: &str) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| o.kind == kind && o.result.is_err())
            .collect()
    }

    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_err()).count()
    }

    /// Requests per second actually sent.
    pub fn rate(&self) -> f64 {
        self.outcomes.len() as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let mut l: Vec<Duration> = self.outcomes.iter().map(|o| o.latency).collect();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l.sort();
        l[((l.len() - 1) as f64 * p).round() as usize]
    }

    /// A short description of the first few failures, for assertion messages.
    pub fn describe_failures(&self, max: usize) -> String {
        self.outcomes
            .iter()
            .filter_map(|o| {
                o.result
                    .as_ref()
                    .err()
                    .map(|e| format!("{:>6.2}s {} {e}", o.at.as_secs_f64(), o.kind))
            })
            .take(max)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Send `rate` requests per second for `duration`, at most `concurrency` in flight, request
/// `i` made by `make(i)`. Returns every outcome. The pacing is open-loop: a slow server does
/// not slow the schedule down (up to the concurrency limit), as with real agents.
pub async fn run<F, Fut>(rate: u32, duration: Duration, concurrency: usize, make: F) -> Report
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (&'static str, Result<(), String>)> + Send + 'static,
{
    let make = Arc::new(make);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < duration {
        ticker.tick().await;
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        let (make, outcomes) = (make.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let at = start.elapsed();
            let (kind, result) = make(i).await;
            outcomes.lock().unwrap().push(Outcome {
                kind,
                at,
                latency: t.elapsed(),
                result,
            });
            drop(permit);
        }));
        i += 1;
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let mut outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    outcomes.sort_by_key(|o| o.at);
    Report { outcomes, elapsed }
}
