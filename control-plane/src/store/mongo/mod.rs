//! MongoDB backend (production; a replica set in deployment).
//!
//! Queries are built from typed values only: no request body or query string is ever turned
//! into a filter document, so operator injection (`{"$ne": …}`) has nowhere to enter. Every
//! audited change runs in a session transaction together with its audit record; a concurrent
//! append to the same chain (a unique `_id` of `tenant:seq`) aborts one of them, which is run
//! again ([`retrying`]). Presence writes are idempotent (`$max` on `last_seen`, plain `$set`
//! of the rest) and run concurrently.

mod alerts;
mod audit;
mod backup;
mod devices;
mod documents;
mod enrolment;
mod identity;
mod ingest;
mod jobs;
mod leases;
mod migrations;
mod outbox;
mod telemetry;

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, TimeZone, Utc};
use mongodb::{Client, ClientSession, Collection};

use super::backend::Backend;
use super::migrate::Applied;
use super::{StoreError, StoreResult};
use crate::chain::{ChainKey, Entry};

/// MongoDB-backed store.
pub(crate) struct MongoStore {
    client: Client,
    db: mongodb::Database,
    key: ChainKey,
}

impl MongoStore {
    /// Connects (the schema is brought up to date by `migrate`).
    pub(crate) async fn connect(url: &str, database: &str, key: ChainKey) -> StoreResult<Self> {
        let client = Client::with_uri_str(url).await?;
        let db = client.database(database);
        Ok(Self { client, db, key })
    }

    fn collection(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// One page of `collection` matching `filter`, newest first by `_id` (time-ordered ids),
    /// after the id `after` (the last of the previous page), with how many match in all.
    async fn newest_first(
        &self,
        collection: &str,
        mut filter: Document,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<(Vec<Document>, u64)> {
        use futures::TryStreamExt;
        let total = self.collection(collection).count_documents(filter.clone()).await?;
        if let Some(after) = after {
            filter.insert("_id", doc! {"$lt": after});
        }
        let docs = self
            .collection(collection)
            .find(filter)
            .sort(doc! {"_id": -1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        Ok((docs, total))
    }

    /// Every document of `collection` matching `filter`, in `sort` order.
    async fn find_sorted(&self, collection: &str, filter: Document, sort: Document) -> StoreResult<Vec<Document>> {
        use futures::TryStreamExt;
        let options = mongodb::options::FindOptions::builder().sort(sort).build();
        Ok(self
            .collection(collection)
            .find(filter)
            .with_options(options)
            .await?
            .try_collect()
            .await?)
    }

    /// A session with a started transaction.
    async fn begin(&self) -> StoreResult<ClientSession> {
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        Ok(session)
    }

    /// Records `audit` when the change in `session` took effect (`changed`), commits, and
    /// answers whether it did.
    async fn commit_audited(&self, mut session: ClientSession, changed: bool, audit: &Entry) -> StoreResult<bool> {
        if changed {
            self.append_audit(&mut session, audit.clone()).await?;
        }
        session.commit_transaction().await?;
        Ok(changed)
    }

    /// Chains `entry` onto its tenant's audit log inside `session`'s transaction. A
    /// concurrent append to the same chain makes this fail with [`StoreError::Contention`].
    async fn append_audit(&self, session: &mut ClientSession, entry: Entry) -> StoreResult<()> {
        let audit = self.collection("audit");
        let last = audit
            .find_one(doc! {"tenant": &entry.change.tenant})
            .sort(doc! {"seq": -1})
            .session(&mut *session)
            .await?;
        let prev = match last {
            Some(d) => Some((
                d.get_i64("seq").map_err(|e| corrupt("audit seq", e))?,
                d.get_str("hash").map_err(|e| corrupt("audit hash", e))?.to_owned(),
            )),
            None => None,
        };
        let record = crate::chain::seal(entry, &self.key, prev);
        let mut d = bson::to_document(&record).map_err(|e| corrupt("audit record", e))?;
        d.insert("_id", format!("{}:{}", record.tenant, record.seq));
        match audit.insert_one(d).session(&mut *session).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(StoreError::Contention),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Backend for MongoStore {
    async fn migrate(&self, dry_run: bool) -> StoreResult<Vec<Applied>> {
        migrations::run(self, dry_run).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client.database("admin").run_command(doc! {"ping": 1}).await?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "mongodb"
    }
}

/// Runs a transactional change again while it fails transiently (a concurrent change to the
/// same audit chain, a transaction write conflict): up to [`RETRIES`] times, pausing a random
/// time below a growing bound so that writers racing for one chain head spread out instead of
/// colliding again in lockstep.
async fn retrying<T, F, Fut>(f: F) -> StoreResult<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Err(e) if attempt < RETRIES && e.is_transient() => {
                attempt += 1;
                let bound_ms = 4u64 << attempt.min(5);
                let pause = rand::Rng::random_range(&mut rand::rng(), 1..=bound_ms);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            // Still conflicting after every retry: the caller is told to try again (409), not
            // that the server failed.
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "a write kept conflicting; giving up");
                return Err(StoreError::Contention);
            }
            other => return other,
        }
    }
}

/// Attempts after the first before a transient failure is reported (about 2 s of pauses at
/// most: enough for dozens of concurrent changes to one tenant's chain).
const RETRIES: u32 = 24;

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

/// `Conflict { what }` for a duplicate key, the error itself otherwise.
fn conflict(e: mongodb::error::Error, what: &str) -> StoreError {
    if is_duplicate_key(&e) {
        StoreError::Conflict { what: what.to_owned() }
    } else {
        e.into()
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// An optional millisecond timestamp field.
fn time(d: &Document, key: &str) -> Option<DateTime<Utc>> {
    d.get_i64(key).ok().and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn required_time(d: &Document, key: &str) -> StoreResult<DateTime<Utc>> {
    time(d, key).ok_or_else(|| corrupt(key, "missing"))
}

fn text(d: &Document, key: &str) -> StoreResult<String> {
    d.get_str(key).map(str::to_owned).map_err(|e| corrupt(key, e))
}

fn optional_text(d: &Document, key: &str) -> Option<String> {
    d.get_str(key).ok().map(str::to_owned)
}

fn parsed<T>(d: &Document, key: &str, parse: impl Fn(&str) -> Result<T, luach_schemas::IdError>) -> StoreResult<T> {
    parse(&text(d, key)?).map_err(|e| corrupt(key, e))
}
