//! Shutdown: one signal every loop selects on (mini-redis's pattern), and a [`TaskSet`] that
//! knows the process's background tasks so that they are stopped in order: listeners first,
//! then what serves connections, then what writes state (heartbeat flushers, presence records),
//! and storage last, only once nothing can write to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// Waits for shutdown. Cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown was triggered (or the trigger was dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

/// Triggers shutdown.
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Triggers.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// A trigger and its receiver.
pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

/// The two ways a process is asked to stop: at once (SIGINT, or a second signal), or
/// gracefully (SIGTERM, SIGQUIT: agents are told to move, running sessions may finish).
#[derive(Clone)]
pub struct Stops {
    /// Stop at once.
    pub now: Shutdown,
    /// Stop after draining.
    pub graceful: Shutdown,
}

impl Stops {
    /// Resolves once either was triggered: `true` for a graceful stop.
    pub async fn wait(&mut self) -> bool {
        if self.now.is_triggered() {
            return false;
        }
        tokio::select! {
            biased;
            _ = self.now.wait() => false,
            _ = self.graceful.wait() => true,
        }
    }
}

/// Stop order: lower stages stop first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Accept loops.
    Listeners = 0,
    /// What serves and follows: watchers, tunnels, agents, nodes.
    Services = 1,
    /// What writes state on the way out: heartbeat flushers, presence records.
    Writers = 2,
}

/// The process's background tasks, each with its own stop signal, stopped stage by stage.
pub struct TaskSet {
    stages: Vec<(Stage, ShutdownTrigger, Shutdown, JoinSet<()>)>,
}

impl Default for TaskSet {
    fn default() -> Self {
        TaskSet::new()
    }
}

impl TaskSet {
    /// An empty set.
    pub fn new() -> TaskSet {
        let stages = [Stage::Listeners, Stage::Services, Stage::Writers]
            .into_iter()
            .map(|st| {
                let (t, s) = shutdown_pair();
                (st, t, s, JoinSet::new())
            })
            .collect();
        TaskSet { stages }
    }

    /// The stop signal of `stage` (for tasks spawned elsewhere that must stop with it).
    pub fn signal(&self, stage: Stage) -> Shutdown {
        self.stages.iter().find(|s| s.0 == stage).map(|s| s.2.clone()).unwrap_or_else(|| shutdown_pair().1)
    }

    /// Spawns `make(stop)` in `stage`.
    pub fn spawn<F, Fut>(&mut self, stage: Stage, make: F)
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(s) = self.stages.iter_mut().find(|s| s.0 == stage) {
            let fut = make(s.2.clone());
            s.3.spawn(fut);
        }
    }

    /// Stops one stage now (the others go later with [`TaskSet::stop`]).
    pub async fn stop_stage(&mut self, stage: Stage, each: Duration) {
        if let Some((_, trigger, _, set)) = self.stages.iter_mut().find(|s| s.0 == stage) {
            trigger.trigger();
            let all = async { while set.join_next().await.is_some() {} };
            if tokio::time::timeout(each, all).await.is_err() {
                set.abort_all();
                while set.join_next().await.is_some() {}
            }
        }
    }

    /// Stops every stage in order, waiting at most `each` for a stage's tasks to finish (then
    /// aborting what is left of it).
    pub async fn stop(mut self, each: Duration) {
        for (stage, trigger, _, mut set) in self.stages.drain(..) {
            trigger.trigger();
            let all = async { while set.join_next().await.is_some() {} };
            if tokio::time::timeout(each, all).await.is_err() {
                tracing::warn!(?stage, left = set.len(), "tasks did not stop in time; aborting them");
                set.abort_all();
                while set.join_next().await.is_some() {}
            }
        }
    }
}

/// Counts something while it lives (a connection, a request): one more now, one less when
/// dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one more in `counter`.
    pub fn new(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `f` every `period`, the first time one period from now, until `shutdown` (the one
/// "tick until shutdown" loop: a sweeper, a reaper, a flusher).
pub async fn every<F, Fut>(period: Duration, shutdown: Shutdown, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    ticks(period, false, shutdown, f).await
}

/// [`every`], the first time at once (a heartbeat).
pub async fn now_and_every<F, Fut>(period: Duration, shutdown: Shutdown, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    ticks(period, true, shutdown, f).await
}

async fn ticks<F, Fut>(period: Duration, at_once: bool, mut shutdown: Shutdown, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut first = at_once;
    loop {
        if !first {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
        first = false;
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = f() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn stages_stop_in_order() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut set = TaskSet::new();
        for stage in [Stage::Writers, Stage::Listeners, Stage::Services] {
            let order = order.clone();
            set.spawn(stage, move |mut stop| async move {
                stop.wait().await;
                order.lock().map(|mut o| o.push(stage)).ok();
            });
        }
        set.stop(Duration::from_secs(1)).await;
        assert_eq!(*order.lock().unwrap(), vec![Stage::Listeners, Stage::Services, Stage::Writers]);
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_signal_is_aborted() {
        let mut set = TaskSet::new();
        set.spawn(Stage::Services, |_stop| async { std::future::pending::<()>().await });
        let t = std::time::Instant::now();
        set.stop(Duration::from_millis(100)).await;
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn every_ticks_until_shutdown() {
        let (trigger, shutdown) = shutdown_pair();
        let n = Arc::new(AtomicUsize::new(0));
        let counted = n.clone();
        let run = tokio::spawn(now_and_every(Duration::from_millis(10), shutdown, move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }));
        tokio::time::sleep(Duration::from_millis(55)).await;
        trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(1), run).await;
        let ticks = n.load(Ordering::SeqCst);
        assert!((3..=7).contains(&ticks), "{ticks}");
    }
}
