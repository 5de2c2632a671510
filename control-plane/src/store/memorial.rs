//! Memorial plaques: who is remembered and when they passed, so the screens can show the
//! yahrzeits that are coming. Stored as [`DocKind::Memorial`] documents.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use luach_calendar::{HebrewDate, HebrewMonth};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};

use super::{DocKind, DocRepo, StoreError, StoreResult, StoredDoc, TenantScope};

/// When the person passed: a Hebrew date, or a civil date with whether it was after nightfall
/// (which makes it the next Hebrew day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PassingDate {
    /// Month numbers as in the Hebrew calendar's own order: 1 Nisan … 6 Elul, 7 Tishrei …
    /// 12 Adar (Adar I in a leap year), 13 Adar II.
    Hebrew { year: i32, month: u8, day: u8 },
    Civil {
        date: NaiveDate,
        #[serde(default)]
        after_nightfall: bool,
    },
}

impl PassingDate {
    /// The Hebrew date of passing, checking that it exists.
    pub fn hebrew(&self) -> Result<HebrewDate, String> {
        match *self {
            Self::Hebrew { year, month, day } => {
                let month = HebrewMonth::from_number(month).ok_or_else(|| format!("month {month} is not 1–13"))?;
                HebrewDate::new(year, month, day).map_err(|e| e.to_string())
            }
            Self::Civil { date, after_nightfall } => {
                let date = if after_nightfall {
                    date.succ_opt().ok_or("date out of range")?
                } else {
                    date
                };
                HebrewDate::from_civil(date).map_err(|e| e.to_string())
            }
        }
    }
}

/// What a gabbai enters for a plaque.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorialInput {
    /// The name as on the plaque, e.g. "שרה בת אברהם".
    pub name: String,
    #[serde(default)]
    pub family: String,
    pub passed: PassingDate,
    #[serde(default)]
    pub notes: String,
}

/// A stored plaque.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Memorial {
    pub id: String,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub input: MemorialInput,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Memorial {
    fn from_doc(doc: StoredDoc) -> StoreResult<Self> {
        Ok(Self {
            id: doc.id,
            tenant_id: doc.tenant_id,
            input: serde_json::from_value(doc.body).map_err(|e| StoreError::Corrupt(format!("memorial: {e}")))?,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}

/// Tenant-scoped memorial plaques.
#[async_trait]
pub trait MemorialRepo {
    /// Plaques ordered by id, after `after`, at most `limit`.
    async fn list_memorials(&self, scope: &TenantScope, limit: u32, after: Option<&str>) -> StoreResult<Vec<Memorial>>;
    async fn get_memorial(&self, scope: &TenantScope, id: &str) -> StoreResult<Option<Memorial>>;
    /// Creates or replaces; returns the plaque and whether it was created.
    async fn put_memorial(
        &self,
        scope: &TenantScope,
        id: &str,
        input: MemorialInput,
        now: DateTime<Utc>,
    ) -> StoreResult<(Memorial, bool)>;
    async fn delete_memorial(&self, scope: &TenantScope, id: &str) -> StoreResult<bool>;
}

#[async_trait]
impl<S: DocRepo + ?Sized> MemorialRepo for S {
    async fn list_memorials(&self, scope: &TenantScope, limit: u32, after: Option<&str>) -> StoreResult<Vec<Memorial>> {
        let docs = self.list_docs(scope, DocKind::Memorial, limit, after).await?;
        docs.into_iter().map(Memorial::from_doc).collect()
    }

    async fn get_memorial(&self, scope: &TenantScope, id: &str) -> StoreResult<Option<Memorial>> {
        self.get_doc(scope, DocKind::Memorial, id)
            .await?
            .map(Memorial::from_doc)
            .transpose()
    }

    async fn put_memorial(
        &self,
        scope: &TenantScope,
        id: &str,
        input: MemorialInput,
        now: DateTime<Utc>,
    ) -> StoreResult<(Memorial, bool)> {
        let body = serde_json::to_value(&input).map_err(|e| StoreError::Corrupt(format!("memorial: {e}")))?;
        let (doc, created) = self.put_doc(scope, DocKind::Memorial, id, body, now).await?;
        Ok((Memorial::from_doc(doc)?, created))
    }

    async fn delete_memorial(&self, scope: &TenantScope, id: &str) -> StoreResult<bool> {
        self.delete_doc(scope, DocKind::Memorial, id).await
    }
}
