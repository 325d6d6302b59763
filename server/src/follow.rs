//! The one loop that follows the change feed. Every piece of process state derived from storage
//! (TLS client trust, the nodes' authorization generation, tunnels to leaves that were removed,
//! agents to roots, locks) is kept in step by calling [`follow`] with the prefixes it depends
//! on: it hears `All` when it must re-read everything (the feed started, or it could not
//! promise that no event was missed), and each change under its prefixes after that, from
//! whichever process of the cluster made it.

use std::future::Future;
use std::sync::Arc;

use crate::shutdown::Shutdown;
use crate::storage::{Backend, Event, Watched};

/// What a follower must act on.
#[derive(Debug, Clone)]
pub enum Changed {
    /// Re-read everything it depends on.
    All,
    /// One change under its prefixes.
    Key(Event),
}

/// Calls `on` for every change under `prefixes` (and `All` at start and after every gap) until
/// `shutdown`.
pub async fn follow<F, Fut>(backend: Arc<dyn Backend>, prefixes: &[&str], mut shutdown: Shutdown, mut on: F)
where
    F: FnMut(Changed) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut watcher = backend.watch();
    loop {
        let next = tokio::select! {
            _ = shutdown.wait() => return,
            n = watcher.next() => n,
        };
        match next {
            Watched::Init | Watched::Resync => on(Changed::All).await,
            Watched::Event(e) if prefixes.iter().any(|p| e.key.starts_with(p)) => on(Changed::Key(e)).await,
            Watched::Event(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryBackend;
    use crate::storage::{BackendExt, EventKind};
    use std::sync::Mutex;

    #[tokio::test]
    async fn followers_hear_all_first_then_their_prefixes_only() {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new(shared::timefmt::system_clock()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (trigger, stop) = crate::shutdown::shutdown_pair();
        let task = {
            let (b, seen) = (backend.clone(), seen.clone());
            tokio::spawn(follow(b, &["roles/"], stop, move |c| {
                let seen = seen.clone();
                async move {
                    let s = match c {
                        Changed::All => "all".to_string(),
                        Changed::Key(e) => format!("{:?} {}", e.kind, e.key),
                    };
                    seen.lock().map(|mut v| v.push(s)).ok();
                }
            }))
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        backend.put("roles/a", b"1".to_vec(), None).await.ok();
        backend.put("users/x", b"1".to_vec(), None).await.ok();
        backend.delete("roles/a").await.ok();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        trigger.trigger();
        let _ = task.await;
        let got = seen.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(got, vec!["all".to_string(), format!("{:?} roles/a", EventKind::Put), format!("{:?} roles/a", EventKind::Delete)]);
    }
}
