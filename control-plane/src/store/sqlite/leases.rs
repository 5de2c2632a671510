//! Leases on SQLite: table `leases`, one row per name. (One SQLite file serves one server,
//! so a lease is always free for it; the same code path keeps both backends alike.)

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{SqliteStore, ms};
use crate::store::StoreResult;
use crate::store::backend::LeaseBackend;

#[async_trait]
impl LeaseBackend for SqliteStore {
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| {
            let n = conn.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.holder = excluded.holder OR leases.until < ?4",
                params![name, holder, ms(until), ms(now)],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| {
            conn.execute(
                "UPDATE leases SET until = 0 WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )?;
            Ok(())
        })
        .await
    }
}
