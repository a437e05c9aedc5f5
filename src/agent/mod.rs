//! The agent side of the fleet: `fleetctl agent`.
//!
//! `collector` reads this host's metrics (sysinfo), `reporter` delivers them to the fleet
//! servers with backoff and a bounded buffer, and `simulator` drives many virtual machines
//! with realistic, varying metrics for load tests and demos. The report format and its
//! validation live in `fleet::report`, shared with the server, so an agent cannot build a
//! report the server would not understand.

pub mod collector;
pub mod reporter;
pub mod simulator;

/// Wall clock, ms since the epoch: the report's timestamp is when the agent measured.
pub use crate::store::time::now_millis as now_ms;

/// A uniform number in [0, 1) from the OS RNG (backoff jitter; not a hot path).
pub fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |v| (v >> 11) as f64 / (1u64 << 53) as f64)
}

/// Small, fast, seedable PRNG (xorshift64*) for simulated metrics: not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn from_os() -> Rng {
        Rng::seeded(getrandom::u64().unwrap_or(0x9E37_79B9_7F4A_7C15))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}
