//! Bounded exponential backoff for transient failures: a flapping link should not fail a restore, and a
//! command that really failed must not run twice.
//!
//! Only errors the caller classifies as transient are retried: a refused, reset or timed-out connection, a
//! failed handshake, a dropped session. A remote command that ran and exited non-zero is retried only when
//! the caller marked it idempotent (see the pve-ssh crate). Each failed attempt is logged with its number and
//! the next delay; on exhaustion the error names the attempt count and the last cause. The [`Sleeper`] is
//! injectable so tests never sleep. In dry-run the retried operation goes through
//! [`crate::runner::Runner::effect`], which skips it, so there is nothing to retry.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// Waits between attempts. Tests pass a fake that records the delays.
pub trait Sleeper {
    /// Blocks for `delay`.
    fn sleep(&self, delay: Duration);
}

/// The real sleeper.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, delay: Duration) {
        std::thread::sleep(delay);
    }
}

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (at least 1).
    pub attempts: u32,
    /// Delay after the first failure; doubled after each further failure.
    pub initial_delay: Duration,
    /// Upper bound for one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, waiting 1 s then 2 s (and 4 s for a 4th attempt), never more than 60 s at once.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1-based): initial, 2x, 4x..., capped.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// Errors that know whether trying again could help.
pub trait Transient {
    /// True for failures of the path to the other side (refused, reset, timeout, handshake, dropped
    /// session); false for an answer (authentication refused, command failed, not found).
    fn is_transient(&self) -> bool;
}

/// Why a retried operation failed for good.
#[derive(Debug, Error)]
pub enum RetryError<E: fmt::Display> {
    /// Every attempt failed with a transient error.
    #[error("{what} failed after {attempts} attempts: {last}")]
    Exhausted {
        /// What was tried.
        what: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last cause.
        last: E,
    },
    /// A failure that retrying cannot fix; returned at once.
    #[error("{0}")]
    Permanent(E),
}

impl<E: fmt::Display> RetryError<E> {
    /// The underlying error, whichever way it failed.
    pub fn into_inner(self) -> E {
        match self {
            RetryError::Exhausted { last, .. } | RetryError::Permanent(last) => last,
        }
    }

    /// The underlying error.
    pub fn inner(&self) -> &E {
        match self {
            RetryError::Exhausted { last, .. } | RetryError::Permanent(last) => last,
        }
    }
}

/// Runs `op` (given the 1-based attempt number) until it succeeds, fails with an error `should_retry`
/// rejects, or `policy.attempts` attempts have failed.
pub fn retry_with<T, E: fmt::Display>(
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
    what: &str,
    should_retry: impl Fn(&E) -> bool,
    mut op: impl FnMut(u32) -> Result<T, E>,
) -> Result<T, RetryError<E>> {
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        match op(attempt) {
            Ok(value) => return Ok(value),
            Err(e) if !should_retry(&e) => return Err(RetryError::Permanent(e)),
            Err(e) if attempt >= attempts => {
                return Err(RetryError::Exhausted {
                    what: what.to_owned(),
                    attempts,
                    last: e,
                });
            }
            Err(e) => {
                let delay = policy.delay_after(attempt);
                crate::warn!(
                    "{what}: attempt {attempt}/{attempts} failed: {e}; retrying in {}",
                    humantime::format_duration(delay)
                );
                sleeper.sleep(delay);
                attempt += 1;
            }
        }
    }
}

/// [`retry_with`] for errors that classify themselves through [`Transient`].
pub fn retry_with_backoff<T, E: fmt::Display + Transient>(
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
    what: &str,
    op: impl FnMut(u32) -> Result<T, E>,
) -> Result<T, RetryError<E>> {
    retry_with(policy, sleeper, what, Transient::is_transient, op)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::log;
    use crate::runner::{Access, Runner};

    #[derive(Default)]
    struct FakeSleeper(RefCell<Vec<Duration>>);
    impl Sleeper for FakeSleeper {
        fn sleep(&self, delay: Duration) {
            self.0.borrow_mut().push(delay);
        }
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Fault {
        Refused,
        AuthDenied,
    }
    impl fmt::Display for Fault {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                Fault::Refused => "connection refused",
                Fault::AuthDenied => "authentication denied",
            })
        }
    }
    impl Transient for Fault {
        fn is_transient(&self) -> bool {
            *self == Fault::Refused
        }
    }

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[test]
    fn success_on_first_attempt_does_not_sleep_or_log() {
        let sleeper = FakeSleeper::default();
        let (result, lines) = log::capture(|| {
            retry_with_backoff(&RetryPolicy::default(), &sleeper, "ssh", |_| {
                Ok::<_, Fault>(7)
            })
        });
        assert_eq!(result.unwrap(), 7);
        assert!(sleeper.0.borrow().is_empty());
        assert!(lines.is_empty());
    }

    #[test]
    fn failure_then_success_logs_the_failed_attempt() {
        let sleeper = FakeSleeper::default();
        let (result, lines) = log::capture(|| {
            retry_with_backoff(
                &RetryPolicy::default(),
                &sleeper,
                "connect root@pve:22",
                |n| {
                    if n == 1 { Err(Fault::Refused) } else { Ok(n) }
                },
            )
        });
        assert_eq!(result.unwrap(), 2, "succeeded on the 2nd attempt");
        assert_eq!(
            lines,
            vec![
                "pve-tools: warning: connect root@pve:22: attempt 1/3 failed: connection refused; retrying in 1s"
            ]
        );
        assert_eq!(*sleeper.0.borrow(), secs(&[1]));
    }

    /// `what` retried under the default policy, failing with `fault` every time: the result, the log
    /// lines, how many times it ran, and the delays slept.
    fn always_failing(
        what: &str,
        fault: Fault,
    ) -> (Result<(), RetryError<Fault>>, Vec<String>, u32, FakeSleeper) {
        let sleeper = FakeSleeper::default();
        let mut calls = 0;
        let (result, lines) = log::capture(|| {
            retry_with_backoff(&RetryPolicy::default(), &sleeper, what, |_| {
                calls += 1;
                Err::<(), _>(fault.clone())
            })
        });
        (result, lines, calls, sleeper)
    }

    #[test]
    fn exhaustion_names_three_attempts_and_the_last_cause() {
        let (result, lines, calls, _) = always_failing("connect", Fault::Refused);
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            "connect failed after 3 attempts: connection refused"
        );
        assert!(matches!(err, RetryError::Exhausted { attempts: 3, .. }));
        assert_eq!(calls, 3);
        assert_eq!(
            lines.len(),
            2,
            "the last failure is the error, not a retry warning"
        );
    }

    #[test]
    fn delays_double_from_one_second() {
        let sleeper = FakeSleeper::default();
        let policy = RetryPolicy {
            attempts: 4,
            ..RetryPolicy::default()
        };
        let _ = log::capture(|| {
            retry_with_backoff(&policy, &sleeper, "x", |_| Err::<(), _>(Fault::Refused))
        });
        assert_eq!(*sleeper.0.borrow(), secs(&[1, 2, 4]));
    }

    #[test]
    fn custom_attempts_and_delay() {
        let sleeper = FakeSleeper::default();
        let policy = RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(250),
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let (result, _) = log::capture(|| {
            retry_with_backoff(&policy, &sleeper, "x", |_| {
                calls += 1;
                Err::<(), _>(Fault::Refused)
            })
        });
        assert!(matches!(
            result,
            Err(RetryError::Exhausted { attempts: 5, .. })
        ));
        assert_eq!(calls, 5);
        let ms: Vec<u128> = sleeper.0.borrow().iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![250, 500, 1000, 2000]);
    }

    #[test]
    fn delay_is_capped() {
        let policy = RetryPolicy {
            attempts: 10,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        assert_eq!(policy.delay_after(10), Duration::from_secs(5));
    }

    #[test]
    fn dry_run_executes_nothing_and_retries_nothing() {
        let sleeper = FakeSleeper::default();
        let runner = Runner::new(true);
        let mut executed = 0;
        let mut attempts = 0;
        let (result, lines) = log::capture(|| {
            retry_with_backoff(&RetryPolicy::default(), &sleeper, "qmrestore", |_| {
                attempts += 1;
                runner.effect(Access::Mutating, "run: qmrestore x 100", || {
                    executed += 1;
                    Err::<(), _>(Fault::Refused)
                })
            })
        });
        assert!(result.unwrap().is_none());
        assert_eq!((executed, attempts), (0, 1));
        assert!(sleeper.0.borrow().is_empty());
        assert_eq!(
            lines,
            vec!["pve-tools: [dry-run] would run: qmrestore x 100"]
        );
    }

    #[test]
    fn non_transient_failure_is_not_retried() {
        let (result, lines, calls, sleeper) = always_failing("login", Fault::AuthDenied);
        assert!(matches!(
            result,
            Err(RetryError::Permanent(Fault::AuthDenied))
        ));
        assert_eq!(calls, 1);
        assert!(sleeper.0.borrow().is_empty());
        assert!(lines.is_empty());
    }
}
