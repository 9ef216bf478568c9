//! Where the States Language gets randomness (`States.UUID`, `States.MathRandom`, `$uuid`,
//! `$random`, retry jitter): from the operating system, unless an engine runs its executions
//! with a seeded source so that tests are reproducible. The source is set per thread around each
//! poll of an execution's future ([`Scoped`]), so concurrent executions of different engines
//! never see each other's source.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// A source of randomness.
pub trait Entropy: Send + Sync {
    /// 64 random bits.
    fn next_u64(&self) -> u64;
}

/// The operating system's generator (the default).
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn next_u64(&self) -> u64 {
        rand::rng().next_u64()
    }
}

/// A seeded generator: the same seed gives the same sequence.
pub struct SeededEntropy(Mutex<StdRng>);

impl SeededEntropy {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn next_u64(&self) -> u64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).next_u64()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn Entropy>>> = const { RefCell::new(None) };
}

fn os() -> Arc<dyn Entropy> {
    static OS: OnceLock<Arc<dyn Entropy>> = OnceLock::new();
    OS.get_or_init(|| Arc::new(OsEntropy)).clone()
}

/// The source in effect on this thread.
pub fn current() -> Arc<dyn Entropy> {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(os)
}

/// A uniform integer in `[low, high)`.
pub fn range(low: i64, high: i64) -> i64 {
    let span = (high - low).max(1) as u64;
    low + (current().next_u64() % span) as i64
}

/// A uniform float in `[0, 1)`.
pub fn unit() -> f64 {
    StdRng::seed_from_u64(current().next_u64()).random::<f64>()
}

/// A version 4 UUID.
pub fn uuid() -> String {
    let source = current();
    let bytes = ((source.next_u64() as u128) << 64) | source.next_u64() as u128;
    uuid::Builder::from_random_bytes(bytes.to_be_bytes())
        .into_uuid()
        .to_string()
}

/// Runs `f` with `entropy` as the source of this thread's randomness.
pub fn with<R>(entropy: Arc<dyn Entropy>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(Some(entropy)));
    let result = f();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    result
}

/// A future run with `entropy` as the source of every poll.
pub struct Scoped {
    entropy: Arc<dyn Entropy>,
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Scoped {
    /// Wraps `inner`.
    pub fn new(
        entropy: Arc<dyn Entropy>,
        inner: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self {
            entropy,
            inner: Box::pin(inner),
        }
    }
}

impl Future for Scoped {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let previous = CURRENT.with(|c| c.replace(Some(self.entropy.clone())));
        let result = self.inner.as_mut().poll(cx);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_sequence() {
        let a = SeededEntropy::new(7);
        let b = SeededEntropy::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(
            SeededEntropy::new(8).next_u64(),
            SeededEntropy::new(7).next_u64()
        );
        assert_eq!(uuid().len(), 36);
        let r = range(3, 5);
        assert!((3..5).contains(&r));
    }
}
