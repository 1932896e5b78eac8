//! `Invalidations` over Redis pub/sub: one channel per deployment, `{prefix}:invalidations`.
//! Each message names the instance that sent it, so that an instance skips its own (it forgot
//! at once, locally). Publishing is fire-and-forget on a task of its own: a request never waits
//! for it, and a message lost in an outage is bounded by the caches' time-to-live.

use std::sync::Arc;

use fred::interfaces::PubsubInterface as _;
use fred::prelude::Pool;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use kernel::invalidation::{Forget, Invalidations};
use kernel::{StoreError, UserId};
use serde::{Deserialize, Serialize};

use crate::client::RedisConnection;

#[derive(Serialize, Deserialize)]
struct Wire {
    from: String,
    #[serde(flatten)]
    forget: WireForget,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireForget {
    Sessions(Vec<String>),
    User(String),
    Content(String),
}

pub struct RedisInvalidations {
    connection: RedisConnection,
    pool: Pool,
    channel: Arc<str>,
    /// This instance, as its messages name it.
    origin: Arc<str>,
}

impl RedisInvalidations {
    #[must_use]
    pub fn new(connection: &RedisConnection, prefix: &str) -> Self {
        Self {
            connection: connection.clone(),
            pool: connection.pool.clone(),
            channel: format!("{{{prefix}}}:invalidations").into(),
            origin: hex::encode(rand::random::<[u8; 8]>()).into(),
        }
    }

    /// What the other instances announce from now on.
    ///
    /// # Errors
    /// When the channel cannot be subscribed to.
    pub async fn subscribe(&self) -> Result<BoxStream<'static, Forget>, StoreError> {
        let origin = Arc::clone(&self.origin);
        let messages = self
            .connection
            .messages(self.channel.to_string(), "invalidation")
            .await
            .map_err(|e| StoreError::message(format!("Redis: {e}")))?;
        Ok(messages
            .filter_map(move |text| std::future::ready(decode(&text, &origin)))
            .boxed())
    }
}

fn decode(text: &str, origin: &str) -> Option<Forget> {
    let wire: Wire = serde_json::from_str(text)
        .inspect_err(|error| tracing::warn!(%error, "an undecodable invalidation was skipped"))
        .ok()?;
    if wire.from == origin {
        return None;
    }
    let user = |id: &str| UserId::parse(id).ok();
    Some(match wire.forget {
        WireForget::Sessions(ids) => Forget::Sessions(ids),
        WireForget::User(id) => Forget::User(user(&id)?),
        WireForget::Content(id) => Forget::Content(user(&id)?),
    })
}

impl Invalidations for RedisInvalidations {
    fn announce(&self, forget: Forget) {
        let forget = match forget {
            Forget::Sessions(ids) => WireForget::Sessions(ids),
            Forget::User(id) => WireForget::User(id.as_str().to_owned()),
            Forget::Content(id) => WireForget::Content(id.as_str().to_owned()),
        };
        let wire = Wire {
            from: self.origin.to_string(),
            forget,
        };
        let Ok(text) = serde_json::to_string(&wire) else {
            return;
        };
        let (pool, channel) = (self.pool.clone(), Arc::clone(&self.channel));
        tokio::spawn(async move {
            if let Err(error) = pool
                .next()
                .publish::<(), _, _>(channel.as_ref(), text)
                .await
            {
                tracing::warn!(%error, "an invalidation was not announced; other instances forget it when their caches expire");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt as _;
    use kernel::UserId;
    use kernel::invalidation::{Forget, Invalidations as _};
    use testkit::RedisServer;

    use super::RedisInvalidations;
    use crate::tests::connect;

    #[tokio::test]
    async fn the_other_instances_hear_what_to_forget_and_the_sender_does_not() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        let (one, two) = (
            RedisInvalidations::new(&connection, "test"),
            RedisInvalidations::new(&connection, "test"),
        );
        let other_deployment = RedisInvalidations::new(&connection, "other");
        let mut heard_by_one = one.subscribe().await.unwrap_or_else(|e| panic!("{e}"));
        let mut heard_by_two = two.subscribe().await.unwrap_or_else(|e| panic!("{e}"));
        let ada = UserId::generate();
        let sent = [
            Forget::Sessions(vec!["65f1c0ffee0123456789abcd".to_owned()]),
            Forget::User(ada.clone()),
            Forget::Content(ada),
        ];
        other_deployment.announce(Forget::User(UserId::generate()));
        for forget in &sent {
            one.announce(forget.clone());
        }
        // Each announcement travels on its own: in any order (forgetting is commutative).
        let mut heard = Vec::new();
        for _ in &sent {
            let next = tokio::time::timeout(Duration::from_secs(5), heard_by_two.next()).await;
            heard.push(
                next.ok()
                    .flatten()
                    .unwrap_or_else(|| panic!("heard {heard:?}")),
            );
        }
        for forget in &sent {
            assert!(heard.contains(forget), "{forget:?} not in {heard:?}");
        }
        let own = tokio::time::timeout(Duration::from_millis(300), heard_by_one.next()).await;
        assert!(own.is_err(), "one heard itself: {own:?}");
    }
}
