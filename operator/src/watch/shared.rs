//! One watch that several controllers read (the ConfigMaps: a RagIndex's sources, a pipeline's
//! own config): listed and held once, with a trigger stream per reader fed from one task.

use futures::channel::mpsc;
use futures::stream::BoxStream;
use futures::{SinkExt, Stream, StreamExt};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource};
use tracing::warn;

use super::{Scope, Watched, cached_observed};

/// A trigger stream of a watch that several controllers read (see [`fan_out`]).
pub type Trigger<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// What one reader of a shared watch gets: the store (`S`, the store or a wrapper of it), its
/// trigger, and whether the watch has listed once.
pub struct Feed<S, K> {
    pub store: S,
    pub trigger: Trigger<K>,
    pub synced: Synced,
}

/// Whether a shared watch has listed once. Any number of readers may wait on it (a store's own
/// readiness future wakes only its last waiter).
#[derive(Clone)]
pub struct Synced(tokio::sync::watch::Receiver<bool>);

impl Synced {
    fn of<K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static>(store: &Store<K>) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let store = store.clone();
        tokio::spawn(async move {
            if store.wait_until_ready().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        Self(rx)
    }

    /// Resolves once the watch has listed; fails if it never will.
    pub async fn wait(&self) -> Result<(), ()> {
        self.0
            .clone()
            .wait_for(|s| *s)
            .await
            .map(drop)
            .map_err(drop)
    }
}

/// Like [`cached_observed`], for a kind that more than one controller reads: one list, one
/// store, and a trigger stream per reader, each seeing every touched object (deletions included)
/// in order. A task drives the watch from now on; a reader that falls behind holds it back
/// (bounded channels), so no object is dropped. Watch errors are logged there and retried with
/// kube's backoff, as every other watch does.
pub fn fan_out<K, const N: usize>(
    client: &Client,
    scope: &Scope,
    config: watcher::Config,
    trim: fn(&mut K),
    observe: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> (Store<K>, Synced, [Trigger<K>; N])
where
    K: Watched,
{
    let (store, stream) = cached_observed(client, scope, config, trim, observe);
    let synced = Synced::of(&store);
    let (forward, triggers) = distribute(stream, K::kind(&()).into_owned());
    tokio::spawn(forward);
    (store, synced, triggers)
}

/// The task that hands every object of `stream` to each of `N` readers, and their streams.
fn distribute<K, const N: usize>(
    stream: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    kind: String,
) -> (impl Future<Output = ()> + Send + 'static, [Trigger<K>; N])
where
    K: Clone + Send + 'static,
{
    let mut senders = Vec::with_capacity(N);
    let triggers = std::array::from_fn(|_| {
        let (sender, receiver) = mpsc::channel(64);
        senders.push(sender);
        receiver.map(Ok).boxed()
    });
    let forward = async move {
        let mut stream = stream.boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(object) => {
                    let mut listening = false;
                    for sender in &mut senders {
                        listening |= sender.send(object.clone()).await.is_ok();
                    }
                    if !listening {
                        return;
                    }
                }
                Err(e) => warn!(error = %e, %kind, "watch failed; retrying"),
            }
        }
    };
    (forward, triggers)
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    #[tokio::test]
    async fn every_reader_sees_every_object_in_order_and_errors_are_not_passed_on() {
        let items = vec![Ok(1), Err(watcher::Error::NoResourceVersion), Ok(2), Ok(3)];
        let (forward, [a, b]) = distribute(futures::stream::iter(items), "Test".into());
        let (_, a, b) = tokio::join!(
            forward,
            a.try_collect::<Vec<i32>>(),
            b.try_collect::<Vec<i32>>()
        );
        assert_eq!(a.unwrap(), [1, 2, 3]);
        assert_eq!(b.unwrap(), [1, 2, 3]);
    }

    #[tokio::test]
    async fn the_task_ends_once_no_reader_listens() {
        let (forward, [a]) =
            distribute::<i32, 1>(futures::stream::repeat(7).map(Ok), "Test".into());
        drop(a);
        // An endless watch whose only reader is gone: the task returns instead of spinning.
        forward.await;
    }
}
