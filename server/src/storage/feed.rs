//! The change feed every backend offers, with Teleport's contract (`reference/ha-postgres.md`
//! §2.2): a watcher first gets [`Watched::Init`] once the feed is live, then every committed
//! change in commit order; when it cannot promise that any more (the feed's connection was lost,
//! the watcher fell too far behind) it gets [`Watched::Resync`] as soon as the feed is live again.
//! Either way the consumer re-reads what it depends on; it is never told to replay an offset.
//!
//! ```text
//!  writers ──commit──> backend ──publish(events)──> Feed ──> Watcher ──> Init, Event.., Resync, Event..
//!                         └── up()/down() (PostgreSQL's decoding connection) ──┘
//! ```
//! A watcher subscribes to the event channel *before* it looks at the feed's state, so nothing
//! committed after its `Init` can slip past it (an event may arrive that the reload already saw;
//! consumers are idempotent).

use tokio::sync::{broadcast, watch};

use super::Event;

/// Events a watcher may fall behind by before it must resync.
pub const CAPACITY: usize = 4096;

/// What a watcher gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// The feed is live: read the current state, then follow the events.
    Init,
    /// A committed change.
    Event(Event),
    /// Events may have been missed: read the current state again, then follow the events.
    Resync,
}

#[derive(Debug, Clone)]
enum Msg {
    Event {
        generation: u64,
        event: Event,
    },
    /// The feed of this generation went down.
    Reset {
        generation: u64,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Bumped every time the feed comes (back) up.
    generation: u64,
    live: bool,
}

/// The sending side, owned by a backend.
pub struct Feed {
    events: broadcast::Sender<Msg>,
    state: watch::Sender<State>,
}

impl Feed {
    /// A feed that is live from the start (SQLite and memory: every write passes through us).
    pub fn live() -> Feed {
        let feed = Feed::down_at_start();
        feed.up();
        feed
    }

    /// A feed that is live only once [`Feed::up`] is called (PostgreSQL: once decoding runs).
    pub fn down_at_start() -> Feed {
        Feed { events: broadcast::channel(CAPACITY).0, state: watch::channel(State::default()).0 }
    }

    /// The feed is live (again): watchers waiting for it get `Init` or `Resync`.
    pub fn up(&self) {
        self.state.send_modify(|s| {
            s.generation += 1;
            s.live = true;
        });
    }

    /// The feed lost its source: every watcher must resync once it is up again.
    pub fn down(&self) {
        self.state.send_modify(|s| s.live = false);
        let generation = self.state.borrow().generation;
        let _ = self.events.send(Msg::Reset { generation });
    }

    /// Whether the feed is live now.
    pub fn is_live(&self) -> bool {
        self.state.borrow().live
    }

    /// Delivers committed changes, in commit order.
    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        let generation = self.state.borrow().generation;
        for event in events {
            let _ = self.events.send(Msg::Event { generation, event });
        }
    }

    /// A new watcher.
    pub fn subscribe(&self) -> Watcher {
        let rx = self.events.subscribe();
        Watcher { rx, state: self.state.subscribe(), generation: None, resync: false }
    }
}

/// The receiving side.
pub struct Watcher {
    rx: broadcast::Receiver<Msg>,
    state: watch::Receiver<State>,
    generation: Option<u64>,
    resync: bool,
}

impl Watcher {
    /// The next thing to act on. Waits while the feed is down; pends forever once the backend
    /// is closed (callers select on their shutdown signal).
    pub async fn next(&mut self) -> Watched {
        loop {
            if self.generation.is_none() || self.resync {
                let Ok(state) = self.state.wait_for(|s| s.live).await.map(|s| *s) else {
                    return std::future::pending().await;
                };
                return self.start(state);
            }
            match self.rx.recv().await {
                Ok(msg) => {
                    if let Some(w) = self.take(msg) {
                        return w;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.resync = true,
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    /// What [`Watcher::next`] would return now, without waiting: `None` when nothing is
    /// queued, or while the feed is down (the caller cannot then trust what it holds).
    pub fn try_next(&mut self) -> Option<Watched> {
        loop {
            if self.generation.is_none() || self.resync {
                let state = *self.state.borrow();
                return state.live.then(|| self.start(state));
            }
            match self.rx.try_recv() {
                Ok(msg) => {
                    if let Some(w) = self.take(msg) {
                        return Some(w);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.resync = true,
                Err(broadcast::error::TryRecvError::Empty) | Err(broadcast::error::TryRecvError::Closed) => return None,
            }
        }
    }

    /// Follows the live feed of `state`: `Init` the first time, `Resync` after.
    fn start(&mut self, state: State) -> Watched {
        let first = self.generation.is_none();
        self.generation = Some(state.generation);
        self.resync = false;
        if first { Watched::Init } else { Watched::Resync }
    }

    /// What a message means: an event to return, or nothing (left over, or a reason to reload).
    fn take(&mut self, msg: Msg) -> Option<Watched> {
        let mine = self.generation.unwrap_or(0);
        match msg {
            Msg::Event { generation, event } if generation == mine => Some(Watched::Event(event)),
            // Left over from before the state we resynced to: already covered by the reload.
            Msg::Event { generation, .. } | Msg::Reset { generation } if generation < mine => None,
            // A newer generation or a reset of ours: reload.
            _ => {
                self.resync = true;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EventKind;

    fn ev(key: &str) -> Event {
        Event { kind: EventKind::Put, key: key.into(), revision: 1 }
    }

    async fn next(w: &mut Watcher) -> Option<Watched> {
        tokio::time::timeout(std::time::Duration::from_millis(100), w.next()).await.ok()
    }

    #[tokio::test]
    async fn init_then_events_in_order() {
        let f = Feed::live();
        let mut w = f.subscribe();
        f.publish([ev("a"), ev("b")]);
        assert_eq!(next(&mut w).await, Some(Watched::Init));
        assert_eq!(next(&mut w).await, Some(Watched::Event(ev("a"))));
        assert_eq!(next(&mut w).await, Some(Watched::Event(ev("b"))));
        assert_eq!(next(&mut w).await, None);
    }

    #[tokio::test]
    async fn a_down_feed_means_resync_once_it_is_up_again() {
        let f = Feed::down_at_start();
        let mut w = f.subscribe();
        assert_eq!(next(&mut w).await, None, "no Init before the feed is live");
        f.up();
        assert_eq!(next(&mut w).await, Some(Watched::Init));
        f.down();
        f.publish([ev("lost")]);
        assert_eq!(next(&mut w).await, None, "nothing while the feed is down");
        f.up();
        f.publish([ev("c")]);
        assert_eq!(next(&mut w).await, Some(Watched::Resync));
        assert_eq!(next(&mut w).await, Some(Watched::Event(ev("c"))));
    }

    #[test]
    fn try_next_returns_what_is_queued_without_waiting() {
        let f = Feed::live();
        let mut w = f.subscribe();
        assert_eq!(w.try_next(), Some(Watched::Init));
        assert_eq!(w.try_next(), None);
        f.publish([ev("a")]);
        assert_eq!(w.try_next(), Some(Watched::Event(ev("a"))));
        assert_eq!(w.try_next(), None);
        f.down();
        assert_eq!(w.try_next(), None, "nothing to trust while the feed is down");
        f.up();
        assert_eq!(w.try_next(), Some(Watched::Resync));
        f.publish((0..CAPACITY + 10).map(|i| ev(&format!("k{i}"))));
        assert_eq!(w.try_next(), Some(Watched::Resync), "a lagging watcher reloads");
    }

    #[tokio::test]
    async fn a_slow_watcher_resyncs_instead_of_missing_events() {
        let f = Feed::live();
        let mut w = f.subscribe();
        assert_eq!(next(&mut w).await, Some(Watched::Init));
        f.publish((0..CAPACITY + 10).map(|i| ev(&format!("k{i}"))));
        assert_eq!(next(&mut w).await, Some(Watched::Resync));
    }
}
