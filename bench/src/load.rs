//! Load generation: closed loop (saturation) and open loop (a fixed rate).
//!
//! A [`Worker`] performs one operation at a time (an HTTP request on its own keep-alive
//! connection, a NATS request, a reservation). The closed loop keeps every worker busy and
//! counts what completes: that is the throughput at saturation. The open loop sends
//! operations at fixed intended times, independent of how fast answers come back, and
//! measures each latency from its intended send time, so a stall shows up as the queue
//! behind it (no coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};

/// One operation of a scenario; `Ok(true)` is a success, `Ok(false)` an answer that counts
/// as an error (a non-2xx status), `Err` a broken transport that ends the worker.
pub trait Worker: Send + 'static {
    fn call(&mut self, sequence: u64) -> impl Future<Output = anyhow::Result<bool>> + Send;
}

/// What a load run measured.
#[derive(Clone, Debug, Serialize)]
pub struct LoadResult {
    /// Operations completed in the measured window, errors included.
    pub completed: u64,
    pub errors: u64,
    pub elapsed_seconds: f64,
    /// Successful operations per second.
    pub throughput_per_second: f64,
    /// The rate the open loop aimed at; `None` for a closed loop.
    pub target_rate_per_second: Option<f64>,
    pub latency: Latency,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// The arithmetic mean, for sums of parts (a p50 does not add up).
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, from 1 us to 60 s, three significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, 60_000_000)
}

struct Tally {
    histogram: Histogram<u64>,
    completed: u64,
    errors: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            histogram: new_histogram(),
            completed: 0,
            errors: 0,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds");
        self.completed += other.completed;
        self.errors += other.errors;
    }

    fn into_result(self, elapsed: Duration, target: Option<f64>) -> LoadResult {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.histogram;
        let elapsed_seconds = elapsed.as_secs_f64().max(1e-9);
        LoadResult {
            completed: self.completed,
            errors: self.errors,
            elapsed_seconds,
            throughput_per_second: (self.completed - self.errors) as f64 / elapsed_seconds,
            target_rate_per_second: target,
            latency: Latency {
                mean_ms: h.mean() / 1000.0,
                p50_ms: ms(h.value_at_quantile(0.50)),
                p90_ms: ms(h.value_at_quantile(0.90)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
            },
        }
    }
}

/// Runs every worker flat out for `warmup` (not counted) and then `duration` (counted).
pub async fn closed_loop<W: Worker>(
    workers: Vec<W>,
    warmup: Duration,
    duration: Duration,
) -> LoadResult {
    let started = Instant::now();
    let measure_from = started + warmup;
    let end = measure_from + duration;
    let sequence = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let sequence = sequence.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let n = sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let outcome = worker.call(n).await;
                    let done = Instant::now();
                    // Only operations that started and ended inside the window count, so the
                    // count over the window's length is the throughput.
                    let counted = sent >= measure_from && done <= end;
                    match outcome {
                        Ok(ok) => {
                            if counted {
                                tally.completed += 1;
                                tally.errors += u64::from(!ok);
                                tally.histogram.record(micros(done - sent)).ok();
                            }
                        }
                        Err(error) => {
                            tracing::warn!(error = format!("{error:#}"), "a load worker stopped");
                            tally.errors += 1;
                            tally.completed += 1;
                            break;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        total.merge(task.await.expect("a load worker panicked"));
    }
    total.into_result(duration, None)
}

/// Sends operations at `rate` per second for `duration`, spread over the workers (each runs
/// one operation at a time, so there must be enough of them to absorb the rate), and
/// measures each latency from the operation's intended send time.
pub async fn open_loop<W: Worker>(workers: Vec<W>, rate: f64, duration: Duration) -> LoadResult {
    let rate = rate.max(1.0);
    let (schedule, queue) = mpsc::unbounded_channel::<(u64, Instant)>();
    let queue = Arc::new(Mutex::new(queue));
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                loop {
                    let next = queue.lock().await.recv().await;
                    let Some((sequence, intended)) = next else {
                        break;
                    };
                    match worker.call(sequence).await {
                        Ok(ok) => {
                            tally.completed += 1;
                            tally.errors += u64::from(!ok);
                            tally.histogram.record(micros(intended.elapsed())).ok();
                        }
                        Err(error) => {
                            tracing::warn!(error = format!("{error:#}"), "a load worker stopped");
                            tally.completed += 1;
                            tally.errors += 1;
                            break;
                        }
                    }
                }
                tally
            })
        })
        .collect();

    // The schedule runs on its own thread: std's sleep is precise to tens of microseconds,
    // where tokio's timer wheel has millisecond steps that would bunch requests together.
    let started = Instant::now() + Duration::from_millis(5);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let scheduler = std::thread::spawn(move || {
        let mut sequence: u64 = 0;
        loop {
            let intended = started + interval.mul_f64(sequence as f64);
            if intended >= started + duration {
                break;
            }
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            if schedule.send((sequence, intended)).is_err() {
                break;
            }
            sequence += 1;
        }
    });

    let mut total = Tally::new();
    for task in tasks {
        total.merge(task.await.expect("a load worker panicked"));
    }
    let elapsed = started.elapsed().max(duration);
    scheduler.join().expect("the open-loop scheduler panicked");
    total.into_result(elapsed, Some(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes a fixed time per call, one call at a time.
    #[derive(Clone)]
    struct Sleeper(Duration);

    impl Worker for Sleeper {
        async fn call(&mut self, _sequence: u64) -> anyhow::Result<bool> {
            tokio::time::sleep(self.0).await;
            Ok(true)
        }
    }

    #[tokio::test]
    async fn the_closed_loop_counts_what_completes_in_the_window() {
        let result = closed_loop(
            vec![Sleeper(Duration::from_millis(10)); 2],
            Duration::from_millis(50),
            Duration::from_millis(300),
        )
        .await;
        // Two workers at ~10 ms per call: about 200 per second, less with timer slack.
        assert!(
            result.throughput_per_second > 80.0 && result.throughput_per_second < 220.0,
            "{result:?}"
        );
        assert_eq!(result.errors, 0);
        assert!(result.latency.p50_ms >= 10.0, "{result:?}");
    }

    #[tokio::test]
    async fn the_open_loop_counts_queueing_from_the_intended_send_time() {
        // One worker that needs 20 ms per call, asked for 100 calls a second: it falls
        // further behind with every call, and the latencies must show the queue.
        let result = open_loop(
            vec![Sleeper(Duration::from_millis(20))],
            100.0,
            Duration::from_millis(400),
        )
        .await;
        assert_eq!(result.completed, 40, "{result:?}");
        assert!(result.latency.max_ms > 300.0, "{result:?}");
        assert!(result.throughput_per_second < 70.0, "{result:?}");
    }
}
