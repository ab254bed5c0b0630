//! How an actor survives a crash (a panic in a method): the one place that decides whether it
//! restarts and which calls run again, used by the embedded host (`host.rs`) and by the Ray
//! worker (`ray/worker.rs`) alike.
//!
//! - A crash restarts the actor (its state rebuilt from the constructor's arguments) while
//!   restarts are left (`max_restarts`); after that, the actor dies.
//! - A call that was running when the actor crashed runs again on the restarted actor while it
//!   has tries left (`max_task_retries` beyond the first); otherwise it fails with the crash's
//!   error. A call is on its last try when no retry could follow it, which lets a by-value
//!   argument be moved into it rather than copied.

/// An actor's restarts left and its calls' retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recovery {
    restarts_left: u32,
    max_task_retries: u32,
}

impl Recovery {
    pub(crate) fn new(max_restarts: u32, max_task_retries: u32) -> Recovery {
        Recovery {
            restarts_left: max_restarts,
            max_task_retries,
        }
    }

    /// Whether a call already re-run `attempts` times is on its last try.
    pub(crate) fn is_last_try(&self, attempts: u32) -> bool {
        attempts >= self.max_task_retries
    }

    /// After a crash: whether the actor restarts, taking one of its restarts if so.
    pub(crate) fn restart(&mut self) -> bool {
        match self.restarts_left.checked_sub(1) {
            Some(left) => {
                self.restarts_left = left;
                true
            }
            None => false,
        }
    }

    /// Whether a call caught in a crash, re-run `attempts` times so far, runs again on an
    /// actor that `restarted`.
    pub(crate) fn runs_again(&self, restarted: bool, attempts: u32) -> bool {
        restarted && !self.is_last_try(attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::Recovery;

    #[test]
    fn restarts_run_out_and_calls_retry_within_their_tries() {
        let mut recovery = Recovery::new(2, 1);
        assert!(!recovery.is_last_try(0) && recovery.is_last_try(1));
        assert!(recovery.restart());
        assert!(recovery.runs_again(true, 0));
        assert!(!recovery.runs_again(true, 1), "its one retry was used");
        assert!(recovery.restart());
        assert!(!recovery.restart(), "two restarts, then it dies");
        assert!(
            !recovery.runs_again(false, 0),
            "a dead actor runs nothing again"
        );
        assert!(Recovery::new(0, 0).is_last_try(0));
    }
}
