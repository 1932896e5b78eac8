//! The `JobQueue` port on Redis: one Lua script per movement of a job (`lua/`).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use fred::prelude::{ClientLike as _, KeysInterface as _, Options, Pool, ServerInterface as _};
use fred::types::ClusterHash;
use fred::types::Value;
use fred::types::scripts::Script;
use fred::util::redis_keyslot;
use kernel::{Page, PageRequest};
use notify_core::{
    AckRef, Acked, Claim, ClaimToken, Job, JobChange, JobId, JobQueue, JobState, Keep, NewJob,
    QueueCounts, QueueError, QueueTotals,
};

use crate::client::RedisConnection;
use crate::decode::{array, fields, integer, job, malformed, text};

const COMMON: &str = include_str!("lua/common.lua");

/// How long past the replication wait a held job stays out of reach (see
/// [`RedisJobQueue::enqueue_as`]).
const HOLD_MARGIN_MS: i64 = 5_000;

/// Most jobs one script call reserves or acknowledges: the scripts pass a batch's members to
/// single commands, and Lua's `unpack` is bounded (a few thousand values).
const SCRIPT_BATCH: usize = 500;

/// How much finished history each queue keeps, enforced at every acknowledgement (the
/// retention job enforces the same bounds on a schedule, and an admin may clean sooner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History {
    pub completed_count: u64,
    pub completed_age: TimeDelta,
    pub failed_count: u64,
    pub failed_age: TimeDelta,
}

/// The scripts, compiled once per process (the server caches them by SHA-1).
struct Scripts {
    enqueue: Script,
    reserve: Script,
    acknowledge: Script,
    admin: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_common = |body: &str| Script::from_lua(format!("{COMMON}\n{body}"));
        Self {
            enqueue: with_common(include_str!("lua/enqueue.lua")),
            reserve: with_common(include_str!("lua/reserve.lua")),
            acknowledge: with_common(include_str!("lua/acknowledge.lua")),
            admin: with_common(include_str!("lua/admin.lua")),
        }
    }
}

/// Jobs in Redis under one key prefix (a deployment, or one test).
pub struct RedisJobQueue {
    pool: Pool,
    /// `{prefix}`: the hash tag keeps every key of the deployment in one cluster slot.
    prefix: String,
    /// This process's name in the consumer groups.
    consumer: String,
    history: History,
    scripts: Scripts,
    /// Replicas that must hold an enqueued job before the enqueue is acknowledged (0: none).
    replicas: u32,
    /// How long an enqueue waits for them.
    replication_wait: std::time::Duration,
}

fn failed(error: fred::error::Error) -> QueueError {
    QueueError(format!("Redis: {error}"))
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

impl RedisJobQueue {
    #[must_use]
    pub fn new(connection: &RedisConnection, prefix: &str, history: History) -> Self {
        Self {
            pool: connection.pool.clone(),
            prefix: format!("{{{prefix}}}"),
            consumer: format!("{}-{}", std::process::id(), ClaimToken::generate()),
            history,
            scripts: Scripts::new(),
            replicas: 0,
            replication_wait: connection.timeout / 2,
        }
    }

    /// Acknowledges an enqueue only once `replicas` replicas hold the job (`WAIT`), so that a
    /// failover to one of them keeps every job the API answered for.
    #[must_use]
    pub fn replicated_to(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Whether the node that holds this deployment's queues answers (on a Cluster, the
    /// owner of their slot; `PING` would go to any node).
    ///
    /// # Errors
    /// The client's error when it does not.
    pub async fn reachable(&self) -> Result<(), QueueError> {
        self.pool
            .next()
            .exists::<i64, _>(self.anchor())
            .await
            .map(drop)
            .map_err(failed)
    }

    /// Adds `job` under `id`, unless a job of that id exists: the script is safe to send again.
    /// With replicas to wait for, the job is held (delayed, out of the workers' reach) until
    /// they confirm it, then made due; when they do not, it is withdrawn and the enqueue fails,
    /// so a refused request leaves no email behind. A process that dies in between leaves a
    /// held job that falls due by itself.
    async fn enqueue_as(&self, id: &JobId, job: NewJob) -> Result<(), QueueError> {
        let run_at = millis(job.run_at);
        let wait = i64::try_from(self.replication_wait.as_millis()).unwrap_or(i64::MAX);
        let held_until = if self.replicas == 0 {
            run_at
        } else {
            run_at.max(
                millis(Utc::now())
                    .saturating_add(wait)
                    .saturating_add(HOLD_MARGIN_MS),
            )
        };
        let args: Vec<Value> = vec![
            self.prefix.clone().into(),
            job.queue.into(),
            id.as_str().into(),
            job.kind.into(),
            job.payload.into(),
            job.recipient.unwrap_or_default().into(),
            i64::from(job.max_attempts).into(),
            held_until.into(),
            if self.replicas == 0 { "0" } else { "1" }.into(),
        ];
        // The same connection for the script and `WAIT`, which counts the replicas that have
        // this connection's writes, and on a Cluster must reach the node that took the script.
        let client = self.pool.next();
        self.scripts
            .enqueue
            .evalsha_with_reload::<Value, _, _>(client, vec![self.anchor()], args)
            .await
            .map_err(failed)?;
        if self.replicas == 0 {
            return Ok(());
        }
        let at_the_anchor = Options {
            cluster_hash: Some(ClusterHash::Custom(redis_keyslot(self.anchor().as_bytes()))),
            ..Options::default()
        };
        let reached: i64 = client
            .with_options(&at_the_anchor)
            .wait(i64::from(self.replicas), wait)
            .await
            .map_err(failed)?;
        if reached < i64::from(self.replicas) {
            self.admin("withdraw", vec![id.as_str().into()]).await?;
            return Err(QueueError(format!(
                "Redis: the job reached {reached} of {} replicas within {wait} ms",
                self.replicas
            )));
        }
        // Replicated: acknowledged. Should the release not arrive (a failover in between), the
        // held job falls due by itself a few seconds later.
        if let Err(error) = self
            .admin("release", vec![id.as_str().into(), run_at.into()])
            .await
        {
            tracing::warn!(%error, "a replicated job will run when its hold ends");
        }
        Ok(())
    }

    /// The key every script declares, `{prefix}:queues`: on a Cluster it sends the script to
    /// the node of the deployment's slot, where every key the script touches lives (the job
    /// hashes it finds in a stream or a set cannot be named before it runs; BullMQ's scripts
    /// build them from their prefix the same way).
    fn anchor(&self) -> String {
        format!("{}:queues", self.prefix)
    }

    async fn run(&self, script: &Script, args: Vec<Value>) -> Result<Value, QueueError> {
        script
            .evalsha_with_reload::<Value, _, _>(self.pool.next(), vec![self.anchor()], args)
            .await
            .map_err(failed)
    }

    /// The admin script's `op` with `args` (after the prefix and the operation's name).
    async fn admin(&self, op: &str, args: Vec<Value>) -> Result<Value, QueueError> {
        let mut all = vec![self.prefix.clone().into(), op.into()];
        all.extend(args);
        self.run(&self.scripts.admin, all).await
    }

    /// The admin script's change `op` to job `id` of `queue`, answered `done`, `missing` or
    /// the state the job is in.
    async fn change_job(
        &self,
        op: &str,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        let args: Vec<Value> = vec![queue.into(), id.as_str().into(), millis(now).into()];
        let answer = self.admin(op, args).await?;
        let answer = text(&answer).ok_or_else(|| malformed(op))?;
        Ok(match answer.as_str() {
            "done" => JobChange::Done,
            "missing" => JobChange::NotFound,
            state => {
                JobChange::Refused(JobState::parse(state).ok_or_else(|| malformed("job state"))?)
            }
        })
    }

    /// Acknowledges `claims` alike (`mode`: complete, retry or fail), in one script call.
    async fn acknowledge(
        &self,
        mode: &str,
        error: &str,
        at: DateTime<Utc>,
        claims: &[AckRef],
    ) -> Result<Vec<Acked>, QueueError> {
        let h = &self.history;
        let mut args: Vec<Value> = Vec::with_capacity(8 + 2 * claims.len());
        args.extend([
            self.prefix.clone().into(),
            to_i64(h.completed_count).into(),
            h.completed_age.num_milliseconds().into(),
            to_i64(h.failed_count).into(),
            h.failed_age.num_milliseconds().into(),
            mode.into(),
            error.into(),
            millis(at).into(),
        ]);
        for claim in claims {
            args.extend([claim.job.as_str().into(), claim.token.as_str().into()]);
        }
        array(self.run(&self.scripts.acknowledge, args).await?)?
            .iter()
            .map(|answer| match integer(answer) {
                Some(1) => Ok(Acked::Applied),
                Some(0) => Ok(Acked::Stale),
                _ => Err(malformed("acknowledgement")),
            })
            .collect()
    }

    async fn one(
        &self,
        mode: &str,
        claim: &AckRef,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        self.acknowledge(mode, error, at, std::slice::from_ref(claim))
            .await?
            .pop()
            .ok_or_else(|| malformed("acknowledgement"))
    }
}

fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[async_trait]
impl JobQueue for RedisJobQueue {
    #[tracing::instrument(skip_all)]
    async fn enqueue(&self, job: NewJob) -> Result<JobId, QueueError> {
        let id = JobId::generate();
        self.enqueue_as(&id, job).await?;
        Ok(id)
    }

    async fn reserve(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
    ) -> Result<Option<Claim>, QueueError> {
        Ok(self.reserve_batch(queue, now, lease, 1).await?.pop())
    }

    #[tracing::instrument(skip_all)]
    async fn reserve_batch(
        &self,
        queue: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
        max: usize,
    ) -> Result<Vec<Claim>, QueueError> {
        let max = max.min(SCRIPT_BATCH);
        if max == 0 {
            return Ok(Vec::new());
        }
        let lease_end = millis(now + lease);
        let mut args: Vec<Value> = vec![
            self.prefix.clone().into(),
            queue.into(),
            millis(now).into(),
            lease_end.into(),
            self.consumer.clone().into(),
        ];
        let tokens: Vec<ClaimToken> = (0..max).map(|_| ClaimToken::generate()).collect();
        args.extend(tokens.iter().map(|token| Value::from(token.as_str())));
        let reply = array(self.run(&self.scripts.reserve, args).await?)?;
        let mut claims = Vec::with_capacity(reply.len());
        // The script hands the tokens out in order, one per job.
        for (stored, token) in reply.into_iter().zip(tokens) {
            // The stored fields (a stream entry's or the hash's), as they are now.
            let mut fields = fields(stored)?;
            fields.insert("state".to_owned(), JobState::Active.as_str().to_owned());
            fields.insert("run".to_owned(), lease_end.to_string());
            fields.insert("queue".to_owned(), queue.to_owned());
            claims.push(Claim {
                job: job(fields)?,
                token,
            });
        }
        Ok(claims)
    }

    async fn complete(&self, claim: &AckRef, now: DateTime<Utc>) -> Result<Acked, QueueError> {
        self.one("complete", claim, "", now).await
    }

    #[tracing::instrument(skip_all)]
    async fn complete_batch(
        &self,
        claims: &[AckRef],
        now: DateTime<Utc>,
    ) -> Result<Vec<Acked>, QueueError> {
        let mut acks = Vec::with_capacity(claims.len());
        for chunk in claims.chunks(SCRIPT_BATCH) {
            acks.extend(self.acknowledge("complete", "", now, chunk).await?);
        }
        Ok(acks)
    }

    async fn retry_at(
        &self,
        claim: &AckRef,
        error: &str,
        run_at: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        self.one("retry", claim, error, run_at).await
    }

    async fn fail(
        &self,
        claim: &AckRef,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Acked, QueueError> {
        self.one("fail", claim, error, now).await
    }

    async fn find_job(&self, id: &JobId) -> Result<Option<Job>, QueueError> {
        let fields = fields(self.admin("find", vec![id.as_str().into()]).await?)?;
        if fields.is_empty() {
            return Ok(None);
        }
        job(fields).map(Some)
    }

    async fn counts(&self, queue: &str) -> Result<QueueCounts, QueueError> {
        let reply = array(self.admin("counts", vec![queue.into()]).await?)?;
        let count = |i: usize| {
            reply
                .get(i)
                .and_then(integer)
                .map(|n| u64::try_from(n).unwrap_or(0))
                .ok_or_else(|| malformed("counts"))
        };
        Ok(QueueCounts {
            waiting: count(0)?,
            delayed: count(1)?,
            active: count(2)?,
            completed: count(3)?,
            failed: count(4)?,
        })
    }

    async fn totals(&self, queue: &str) -> Result<QueueTotals, QueueError> {
        let stats = fields(self.admin("stats", vec![queue.into()]).await?)?;
        let count = |event: &str| stats.get(event).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueTotals {
            enqueued: count("enqueued"),
            completed: count("completed"),
            failed: count("failed"),
            retried: count("retried"),
            processing_ms: count("processing_ms"),
        })
    }

    async fn list(
        &self,
        queue: &str,
        state: JobState,
        page: PageRequest,
    ) -> Result<Page<Job>, QueueError> {
        let args: Vec<Value> = vec![
            queue.into(),
            state.as_str().into(),
            to_i64(page.offset()).into(),
            i64::from(page.limit).into(),
        ];
        let mut reply = array(self.admin("list", args).await?)?.into_iter();
        let total = reply
            .next()
            .as_ref()
            .and_then(integer)
            .ok_or_else(|| malformed("list total"))?;
        let items = reply
            .map(|hash| job(fields(hash)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            total: u64::try_from(total).unwrap_or(0),
            request: page,
        })
    }

    async fn retry_failed(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        self.change_job("retry_failed", queue, id, now).await
    }

    async fn remove(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        self.change_job("remove", queue, id, now).await
    }

    async fn promote(
        &self,
        queue: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<JobChange, QueueError> {
        self.change_job("promote", queue, id, now).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        let flag = if paused { "1" } else { "0" };
        self.admin("pause", vec![queue.into(), flag.into()])
            .await
            .map(drop)
    }

    async fn is_paused(&self, queue: &str) -> Result<bool, QueueError> {
        let answer = self.admin("paused", vec![queue.into()]).await?;
        Ok(integer(&answer).ok_or_else(|| malformed("paused"))? == 1)
    }

    async fn clean(&self, queue: &str, state: JobState, keep: Keep) -> Result<u64, QueueError> {
        let args: Vec<Value> = vec![
            queue.into(),
            state.as_str().into(),
            to_i64(keep.newest).into(),
            keep.since.map_or(-1, millis).into(),
        ];
        let removed =
            integer(&self.admin("clean", args).await?).ok_or_else(|| malformed("clean"))?;
        Ok(u64::try_from(removed).unwrap_or(0))
    }

    async fn forget_recipient(
        &self,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let args: Vec<Value> = vec![recipient.into(), millis(now).into()];
        let removed =
            integer(&self.admin("forget", args).await?).ok_or_else(|| malformed("forget"))?;
        Ok(u64::try_from(removed).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use notify_core::jobs::JobChange;
    use notify_core::{JobId, JobQueue as _, JobState, NewJob};
    use testkit::RedisServer;

    use super::RedisJobQueue;
    use crate::tests::{LONG, connect};

    /// A job of the email queue, due now.
    fn verification() -> NewJob {
        NewJob {
            queue: "email".to_owned(),
            kind: "verification".to_owned(),
            payload: "{}".to_owned(),
            recipient: None,
            max_attempts: 3,
            run_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn an_enqueue_the_replicas_do_not_confirm_fails_and_leaves_no_job() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        // No replica at all: `WAIT 1` reaches none.
        let queue = RedisJobQueue::new(&connect(&server).await, "alone", LONG).replicated_to(1);
        assert!(queue.enqueue(verification()).await.is_err(), "refused");
        let counts = queue.counts("email").await.unwrap_or_default();
        assert_eq!((counts.waiting, counts.delayed), (0, 0), "{counts:?}");
        let totals = queue.totals("email").await.unwrap_or_default();
        assert_eq!(totals.enqueued, 0, "a withdrawn job was never enqueued");
    }

    #[tokio::test]
    async fn a_job_whose_enqueue_waits_for_its_replicas_is_neither_promoted_nor_removed() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        let api = RedisJobQueue::new(&connect(&server).await, "held", LONG).replicated_to(1);
        let enqueuing = tokio::spawn(async move { api.enqueue(verification()).await });
        // An administrator's process, on connections of its own (`WAIT` holds the API's).
        let queue = RedisJobQueue::new(&connect(&server).await, "held", LONG);
        let page = kernel::PageRequest { page: 1, limit: 10 };
        let mut held = None;
        for _ in 0..200 {
            let delayed = queue.list("email", JobState::Delayed, page).await.unwrap();
            if let Some(job) = delayed.items.into_iter().next() {
                held = Some(job.id);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let held = held.expect("the job is held while its enqueue waits");
        let now = Utc::now();
        for change in [
            queue.promote("email", &held, now).await.unwrap(),
            queue.remove("email", &held, now).await.unwrap(),
        ] {
            assert_eq!(change, JobChange::Refused(JobState::Active));
        }
        assert!(enqueuing.await.unwrap().is_err(), "refused: no replica");
        assert!(queue.find_job(&held).await.unwrap().is_none(), "withdrawn");
    }

    #[tokio::test]
    async fn an_enqueue_sent_again_makes_no_second_job() {
        testkit::needs!("redis-server");
        let server = RedisServer::start().await;
        let queue = RedisJobQueue::new(&connect(&server).await, "resent", LONG);
        let id = JobId::generate();
        queue
            .enqueue_as(&id, verification())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        queue
            .enqueue_as(&id, verification())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let counts = queue
            .counts("email")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counts.waiting, 1, "{counts:?}");
    }
}
