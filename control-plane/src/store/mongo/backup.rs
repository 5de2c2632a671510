//! Backup rows on MongoDB: each document in canonical Extended JSON (every BSON type comes
//! back as it was), read in one transaction with snapshot read concern, so every collection is
//! read as of the same moment while the server goes on writing. MongoDB ends a transaction
//! after `transactionLifetimeLimitSeconds` (60 s by default): an installation whose backup
//! takes longer needs that limit raised for the backup (docs/operations.md).

use async_trait::async_trait;
use bson::{Bson, Document, doc};
use futures::TryStreamExt;
use mongodb::options::ReadConcern;
use serde_json::Value as Json;

use super::MongoStore;
use crate::store::backup::{self, BackupBackend, BackupScope, Owner, RowSink, Table};
use crate::store::{StoreError, StoreResult};

/// In the order a restore writes them: one collection per kind of content document.
fn tables() -> Vec<Table> {
    let documents = crate::store::DocKind::ALL.map(super::documents::collection_name);
    backup::tables("_id", &documents)
}

/// The filter selecting `table`'s documents of `scope`; `users` are the ids of the tenant's
/// users (for tables owned through a user).
fn filter(table: &Table, scope: &BackupScope, users: &[String]) -> Document {
    match (scope, table.owner) {
        (BackupScope::Installation, _) => doc! {},
        // The installation's documents belong to no tenant: match none.
        (BackupScope::Tenant(_), Owner::Installation) => doc! { "_id": { "$in": [] } },
        (BackupScope::Tenant(t), Owner::Field(field)) => doc! { field: t.as_str() },
        (BackupScope::Tenant(_), Owner::User) => doc! { "user_id": { "$in": users } },
    }
}

#[async_trait]
impl BackupBackend for MongoStore {
    fn backup_tables(&self) -> Vec<Table> {
        tables()
    }

    async fn export(&self, scope: &BackupScope, mut sink: Box<dyn RowSink>) -> StoreResult<Box<dyn RowSink>> {
        let mut session = self.client.start_session().await?;
        session
            .start_transaction()
            .read_concern(ReadConcern::snapshot())
            .await?;
        let users: Vec<String> = match scope {
            BackupScope::Installation => vec![],
            BackupScope::Tenant(t) => self
                .collection("users")
                .find(doc! {"tenant_id": t.as_str()})
                .session(&mut session)
                .await?
                .stream(&mut session)
                .try_collect::<Vec<Document>>()
                .await?
                .into_iter()
                .filter_map(|d| d.get_str("_id").ok().map(str::to_owned))
                .collect(),
        };
        for table in tables().iter().filter(|t| t.in_scope(scope)) {
            let mut cursor = self
                .collection(table.name)
                .find(filter(table, scope, &users))
                .session(&mut session)
                .await?;
            while let Some(d) = cursor.next(&mut session).await.transpose()? {
                sink.row(table.name, Bson::Document(d).into_canonical_extjson())
                    .map_err(|e| StoreError::Task(format!("writing the backup: {e}")))?;
            }
        }
        session.commit_transaction().await?;
        Ok(sink)
    }

    async fn import(&self, table: &'static str, rows: Vec<Json>) -> StoreResult<()> {
        let docs = rows
            .into_iter()
            .map(|row| match Bson::try_from(row) {
                Ok(Bson::Document(d)) => Ok(d),
                Ok(_) => Err(StoreError::Corrupt(format!("{table}: a row is not a document"))),
                Err(e) => Err(StoreError::Corrupt(format!("{table}: {e}"))),
            })
            .collect::<StoreResult<Vec<Document>>>()?;
        if docs.is_empty() {
            return Ok(());
        }
        self.collection(table)
            .insert_many(docs)
            .await
            .map_err(|e| super::conflict(e, &format!("a {table} document of the backup")))?;
        Ok(())
    }

    async fn count_rows(&self, table: &'static str, scope: &BackupScope) -> StoreResult<u64> {
        let filter = self.scope_filter(table, scope).await?;
        Ok(self.collection(table).count_documents(filter).await?)
    }

    async fn delete_rows(&self, table: &'static str, scope: &BackupScope) -> StoreResult<u64> {
        let filter = self.scope_filter(table, scope).await?;
        Ok(self.collection(table).delete_many(filter).await?.deleted_count)
    }
}

impl MongoStore {
    /// The filter choosing `table`'s documents of `scope`, outside any transaction.
    async fn scope_filter(&self, table: &'static str, scope: &BackupScope) -> StoreResult<Document> {
        let spec = backup::table_named(&tables(), table)
            .ok_or_else(|| StoreError::Corrupt(format!("no collection {table}")))?;
        let users: Vec<String> = match scope {
            BackupScope::Tenant(t) if spec.owner == Owner::User => self
                .collection("users")
                .find(doc! {"tenant_id": t.as_str()})
                .await?
                .try_collect::<Vec<Document>>()
                .await?
                .into_iter()
                .filter_map(|d| d.get_str("_id").ok().map(str::to_owned))
                .collect(),
            _ => vec![],
        };
        Ok(filter(&spec, scope, &users))
    }
}
