//! Redis adapters (fred). `RedisChat`: the chat's bus (pub/sub), room history (lists) and
//! presence (a hash) shared by every `console-api`. `RedisJobQueue`: the `JobQueue` port on
//! Redis, for any number of API, worker and
//! scheduler processes (`docs/adr/0010`); `RedisCronLedger`, where schedulers agree on who runs
//! each tick.
//!
//! Each queue is a stream read through one consumer group (`XREADGROUP`), acknowledged with
//! `XACK`; a job's state lives in a hash beside it, delayed retries in a sorted set by due
//! time, leases in a sorted set by lease end, and the finished history in two sorted sets
//! bounded by count and age. Every operation that moves a job is one Lua script, so it is
//! atomic, costs one round trip, and checks the claim token of the acknowledgement that asks
//! for it; batches of reservations and completions share one script call.

mod chat;
mod client;
mod cron;
mod decode;
mod invalidation;
mod queue;
mod rate;

pub use chat::RedisChat;
pub use client::{RedisConnection, RedisSettings, check_url};
pub use cron::RedisCronLedger;
pub use invalidation::RedisInvalidations;
pub use queue::{History, RedisJobQueue};
pub use rate::RedisRateLimiter;

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use notify_core::{Acked, JobQueue as _, NewJob};
    use testkit::RedisServer;

    use super::{History, RedisConnection, RedisJobQueue, RedisSettings};

    pub(crate) const LONG: History = History {
        completed_count: 10_000,
        completed_age: TimeDelta::days(30),
        failed_count: 10_000,
        failed_age: TimeDelta::days(30),
    };

    /// A connection to the test's own server.
    pub(crate) async fn connect(server: &RedisServer) -> RedisConnection {
        connect_to(server.url()).await
    }

    /// A connection to `url`.
    pub(crate) async fn connect_to(url: String) -> RedisConnection {
        RedisConnection::connect(&RedisSettings {
            url,
            tls_ca_file: None,
            pool_size: 2,
            timeout: std::time::Duration::from_secs(5),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A queue on a Redis server of its own, started for the test.
    async fn fresh() -> (RedisServer, RedisJobQueue) {
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        (server, RedisJobQueue::new(&connection, "test", LONG))
    }

    port_contracts::job_queue_contract!(needs "redis-server", fresh);

    mod ledger {
        use testkit::RedisServer;

        use crate::RedisCronLedger;

        async fn fresh() -> (RedisServer, RedisCronLedger) {
            let server = RedisServer::start().await;
            let connection = super::connect(&server).await;
            (server, RedisCronLedger::new(&connection, "test"))
        }

        port_contracts::cron_ledger_contract!(needs "redis-server", fresh);
    }

    /// Every port on a three-master Redis Cluster: each contract suite again, and what a
    /// Cluster adds.
    mod on_a_cluster {
        use testkit::RedisCluster;

        use super::{LONG, connect_to};
        use crate::{RedisChat, RedisCronLedger, RedisJobQueue};

        mod queue {
            use super::*;

            async fn fresh() -> (RedisCluster, RedisJobQueue) {
                let cluster = RedisCluster::start().await;
                let connection = connect_to(cluster.url()).await;
                (cluster, RedisJobQueue::new(&connection, "test", LONG))
            }

            port_contracts::job_queue_contract!(needs "redis-server", fresh);
        }

        mod ledger {
            use super::*;

            async fn fresh() -> (RedisCluster, RedisCronLedger) {
                let cluster = RedisCluster::start().await;
                let connection = connect_to(cluster.url()).await;
                (cluster, RedisCronLedger::new(&connection, "test"))
            }

            port_contracts::cron_ledger_contract!(needs "redis-server", fresh);
        }

        mod chat {
            use super::*;

            async fn fresh() -> (RedisCluster, RedisChat) {
                let cluster = RedisCluster::start().await;
                let connection = connect_to(cluster.url()).await;
                (cluster, RedisChat::new(&connection, "test"))
            }

            port_contracts::chat_bus_contract!(needs "redis-server", fresh);
            port_contracts::chat_history_contract!(needs "redis-server", fresh);
            port_contracts::presence_contract!(needs "redis-server", fresh);
        }

        #[tokio::test]
        async fn deployments_under_other_prefixes_live_in_other_slots() {
            testkit::needs!("redis-server");
            use notify_core::JobQueue as _;
            let cluster = RedisCluster::start().await;
            let connection = connect_to(cluster.url()).await;
            // Prefixes whose hash tags fall on three different masters.
            let mut prefixes = Vec::new();
            let mut owners = Vec::new();
            for n in 0.. {
                let prefix = format!("deployment{n}");
                let owner = cluster.owner_of(&format!("{{{prefix}}}"));
                if !owners.contains(&owner) {
                    owners.push(owner);
                    prefixes.push(prefix);
                }
                if owners.len() == 3 {
                    break;
                }
            }
            let now = port_contracts::now_ms();
            for prefix in &prefixes {
                let queue = RedisJobQueue::new(&connection, prefix, LONG);
                queue
                    .enqueue(super::job(now))
                    .await
                    .unwrap_or_else(|e| panic!("{prefix}: {e}"));
                assert!(queue.reachable().await.is_ok());
                let claim = queue
                    .reserve("mail", now, chrono::TimeDelta::seconds(30))
                    .await
                    .unwrap_or_else(|e| panic!("{prefix}: {e}"));
                assert!(claim.is_some(), "{prefix}: its job, from its own master");
            }
        }
    }

    /// A master and its replica under a Sentinel, failed over while jobs are queued.
    mod under_a_sentinel {
        use std::sync::Arc;

        use notify_core::JobQueue as _;
        use testkit::RedisSentinel;

        use super::{LONG, connect_to};
        use crate::RedisJobQueue;

        #[tokio::test]
        async fn a_failover_keeps_every_job_whose_enqueue_was_acknowledged() {
            testkit::needs!("redis-server");
            let group = RedisSentinel::start().await;
            let connection = connect_to(group.url()).await;
            let queue =
                Arc::new(RedisJobQueue::new(&connection, "failover", LONG).replicated_to(1));
            let (first_master, replica) = group.ports();
            let now = port_contracts::now_ms();
            let enqueueing = {
                let queue = Arc::clone(&queue);
                tokio::spawn(async move {
                    let (mut acknowledged, mut refused) = (Vec::new(), 0);
                    for _ in 0..400 {
                        match queue.enqueue(super::job(now)).await {
                            Ok(id) => acknowledged.push(id),
                            Err(_) => refused += 1,
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    (acknowledged, refused)
                })
            };
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            group.failover().await;
            assert_eq!(group.master_port(), replica, "the replica took over");
            let (acknowledged, refused) = enqueueing.await.unwrap_or_default();
            assert!(
                refused <= 10,
                "{refused} enqueues refused around the failover"
            );
            // Read back through a connection made after the failover, from the new master.
            let after = RedisJobQueue::new(&connect_to(group.url()).await, "failover", LONG);
            for id in &acknowledged {
                assert!(
                    after.find_job(id).await.ok().flatten().is_some(),
                    "job {id:?} was acknowledged and is gone"
                );
            }
            let waiting = after.counts("mail").await.unwrap_or_default().waiting;
            let acknowledged = acknowledged.len() as u64;
            assert!(
                (acknowledged..=acknowledged + refused).contains(&waiting),
                "{waiting} jobs for {acknowledged} acknowledged and {refused} refused"
            );
            assert_ne!(first_master, replica);
        }
    }

    fn job(at: chrono::DateTime<chrono::Utc>) -> NewJob {
        NewJob {
            queue: "mail".into(),
            kind: "test".into(),
            payload: "p".into(),
            recipient: None,
            max_attempts: 3,
            run_at: at,
        }
    }

    #[tokio::test]
    async fn two_processes_share_a_queue_and_take_over_each_others_expired_jobs() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        let (a, b) = (
            RedisJobQueue::new(&connect(&server).await, "shared", LONG),
            RedisJobQueue::new(&connect(&server).await, "shared", LONG),
        );
        let now = port_contracts::now_ms();
        let lease = TimeDelta::seconds(30);
        let id = a.enqueue(job(now)).await.unwrap_or_else(|e| panic!("{e}"));
        let by_a = a.reserve("mail", now, lease).await.ok().flatten();
        assert!(b.reserve("mail", now, lease).await.ok().flatten().is_none());
        let later = now + lease + TimeDelta::seconds(1);
        let by_b = b.reserve("mail", later, lease).await.ok().flatten();
        assert_eq!(
            by_b.as_ref().map(|c| (c.job.id.clone(), c.job.attempts)),
            Some((id, 2))
        );
        let (by_a, by_b) = (by_a.map(|c| c.ack()), by_b.map(|c| c.ack()));
        if let (Some(by_a), Some(by_b)) = (by_a, by_b) {
            assert_eq!(a.complete(&by_a, later).await.ok(), Some(Acked::Stale));
            assert_eq!(b.complete(&by_b, later).await.ok(), Some(Acked::Applied));
        }
    }

    #[tokio::test]
    async fn an_entry_whose_job_was_deleted_by_hand_is_skipped_and_the_batch_keeps_its_claims() {
        testkit::needs!("redis-server");
        use fred::interfaces::KeysInterface as _;
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        let queue = RedisJobQueue::new(&connection, "edited", LONG);
        let now = port_contracts::now_ms();
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(
                queue
                    .enqueue(job(now))
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        let deleted: Result<i64, _> = connection
            .pool
            .next()
            .del(format!("{{edited}}:job:{}", ids[1].as_str()))
            .await;
        assert_eq!(deleted.ok(), Some(1));
        let claims = queue
            .reserve_batch("mail", now, TimeDelta::seconds(30), 3)
            .await
            .unwrap_or_default();
        let taken: Vec<_> = claims.iter().map(|c| c.job.id.clone()).collect();
        assert_eq!(taken, [ids[0].clone(), ids[2].clone()]);
        let acks: Vec<_> = claims.iter().map(notify_core::Claim::ack).collect();
        assert_eq!(
            queue.complete_batch(&acks, now).await.ok(),
            Some(vec![Acked::Applied, Acked::Applied]),
            "each job handed out with the claim its hash holds"
        );
        assert!(queue.find_job(&ids[1]).await.ok().flatten().is_none());
    }

    /// Jobs as an earlier version queued them: the payload in the hash only, a stream entry
    /// holding the id alone, an index of ids by address.
    async fn queue_the_earlier_way(connection: &RedisConnection, ids: &[&str], at: i64) {
        use fred::interfaces::LuaInterface as _;
        let seed = "for _, id in ipairs(ARGV) do \
              if id ~= ARGV[1] then \
                local entry = redis.call('XADD', '{old}:mail:stream', '*', 'id', id) \
                redis.call('HSET', '{old}:job:' .. id, 'id', id, 'queue', 'mail', 'kind', 'test', \
                  'payload', 'sealed', 'recipient', 'ada@x.io', 'attempts', 0, 'max', 3, \
                  'enq', ARGV[1], 'run', ARGV[1], 'state', 'waiting', 'entry', entry) \
                redis.call('SADD', '{old}:recipient:' .. redis.sha1hex('ada@x.io'), id) \
              end \
            end";
        let mut args = vec![at.to_string()];
        args.extend(ids.iter().map(|id| (*id).to_owned()));
        let seeded: Result<fred::types::Value, _> = connection
            .pool
            .next()
            .eval(seed, Vec::<String>::new(), args)
            .await;
        assert!(seeded.is_ok(), "{seeded:?}");
    }

    #[tokio::test]
    async fn jobs_queued_by_the_earlier_format_are_handed_out_and_forgotten() {
        testkit::needs!("redis-server");
        use fred::interfaces::LuaInterface as _;
        let server = RedisServer::start().await;
        let connection = connect(&server).await;
        let queue = RedisJobQueue::new(&connection, "old", LONG);
        let now = port_contracts::now_ms();
        let (first, second) = (
            notify_core::JobId::generate(),
            notify_core::JobId::generate(),
        );
        queue_the_earlier_way(
            &connection,
            &[first.as_str(), second.as_str()],
            now.timestamp_millis(),
        )
        .await;
        let lease = TimeDelta::seconds(30);
        let taken = queue.reserve("mail", now, lease).await.ok().flatten();
        assert_eq!(
            taken.as_ref().map(|c| (
                c.job.id.clone(),
                c.job.attempts,
                c.job.payload.as_str(),
                c.job.recipient.as_deref()
            )),
            Some((first.clone(), 1, "sealed", Some("ada@x.io")))
        );
        if let Some(taken) = taken {
            assert_eq!(
                queue.complete(&taken.ack(), now).await.ok(),
                Some(Acked::Applied)
            );
        }
        assert_eq!(queue.forget_recipient("ada@x.io", now).await.ok(), Some(1));
        assert!(queue.find_job(&second).await.ok().flatten().is_none());
        let index: Result<i64, _> = connection
            .pool
            .next()
            .eval(
                "return redis.call('EXISTS', '{old}:recipient:' .. redis.sha1hex('ada@x.io'))",
                Vec::<String>::new(),
                Vec::<String>::new(),
            )
            .await;
        assert_eq!(index.ok(), Some(0), "the old index by address is gone");
    }

    #[tokio::test]
    async fn finished_history_is_trimmed_to_its_bounds_at_each_acknowledgement() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        let bounded = History {
            completed_count: 2,
            failed_age: TimeDelta::hours(1),
            ..LONG
        };
        let queue = RedisJobQueue::new(&connect(&server).await, "bounded", bounded);
        let now = port_contracts::now_ms();
        for _ in 0..4 {
            queue
                .enqueue(job(now))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let claims = queue
            .reserve_batch("mail", now, TimeDelta::seconds(30), 4)
            .await
            .unwrap_or_default();
        let acks: Vec<_> = claims.iter().map(notify_core::Claim::ack).collect();
        queue
            .complete_batch(&acks[..3], now)
            .await
            .unwrap_or_default();
        queue.fail(&acks[3], "old", now).await.ok();
        let counts = queue.counts("mail").await.unwrap_or_default();
        assert_eq!((counts.completed, counts.failed), (2, 1));
        queue
            .enqueue(job(now))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let two_hours = now + TimeDelta::hours(2);
        if let Ok(Some(claim)) = queue
            .reserve("mail", two_hours, TimeDelta::seconds(30))
            .await
        {
            queue.fail(&claim.ack(), "new", two_hours).await.ok();
        }
        let failed = queue.counts("mail").await.unwrap_or_default().failed;
        assert_eq!(failed, 1, "the failure older than an hour went");
    }
}
