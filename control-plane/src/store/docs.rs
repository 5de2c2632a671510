//! Tenant-scoped documents: records that are read and written whole (synagogue profiles,
//! memorial plaques). One implementation per backend serves every kind; typed repositories
//! (`SynagogueRepo`, `MemorialRepo`) sit on top and own validation of their shape.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{DocRepo, StoreError, StoreResult, TenantScope};

/// Which family of documents; each backend keeps kinds apart (table column / collection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Synagogue,
    Memorial,
    Announcement,
    Aliyot,
    Shiur,
    Timer,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synagogue => "synagogue",
            Self::Memorial => "memorial",
            Self::Announcement => "announcement",
            Self::Aliyot => "aliyot",
            Self::Shiur => "shiur",
            Self::Timer => "timer",
        }
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    pub tenant_id: TenantId,
    pub id: String,
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A document type stored whole under a server-chosen id.
pub trait Document: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: DocKind;
}

/// A stored document of type `T`: its fields flattened beside the id and timestamps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stored<T> {
    pub id: String,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub input: T,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<T: Document> Stored<T> {
    fn from_doc(doc: StoredDoc) -> StoreResult<Self> {
        Ok(Self {
            id: doc.id,
            tenant_id: doc.tenant_id,
            input: serde_json::from_value(doc.body)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", T::KIND.as_str())))?,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }
}

/// A stored document as screens receive it: id and content, without tenant or timestamps.
impl<T> From<Stored<T>> for luach_content::Item<T> {
    fn from(s: Stored<T>) -> Self {
        Self {
            id: s.id,
            input: s.input,
        }
    }
}

/// Typed access to [`Document`]s over any [`DocRepo`].
#[async_trait]
pub trait TypedDocs {
    /// Documents ordered by id, after `after`, at most `limit`.
    async fn list_typed<T: Document>(
        &self,
        scope: &TenantScope,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<Stored<T>>>;
    async fn get_typed<T: Document>(&self, scope: &TenantScope, id: &str) -> StoreResult<Option<Stored<T>>>;
    /// Creates or replaces; returns the document and whether it was created.
    async fn put_typed<T: Document>(
        &self,
        scope: &TenantScope,
        id: &str,
        input: T,
        now: DateTime<Utc>,
    ) -> StoreResult<(Stored<T>, bool)>;
    async fn delete_typed<T: Document>(&self, scope: &TenantScope, id: &str) -> StoreResult<bool>;
}

#[async_trait]
impl<S: DocRepo + ?Sized> TypedDocs for S {
    async fn list_typed<T: Document>(
        &self,
        scope: &TenantScope,
        limit: u32,
        after: Option<&str>,
    ) -> StoreResult<Vec<Stored<T>>> {
        let docs = self.list_docs(scope, T::KIND, limit, after).await?;
        docs.into_iter().map(Stored::from_doc).collect()
    }

    async fn get_typed<T: Document>(&self, scope: &TenantScope, id: &str) -> StoreResult<Option<Stored<T>>> {
        self.get_doc(scope, T::KIND, id)
            .await?
            .map(Stored::from_doc)
            .transpose()
    }

    async fn put_typed<T: Document>(
        &self,
        scope: &TenantScope,
        id: &str,
        input: T,
        now: DateTime<Utc>,
    ) -> StoreResult<(Stored<T>, bool)> {
        let body =
            serde_json::to_value(&input).map_err(|e| StoreError::Corrupt(format!("{}: {e}", T::KIND.as_str())))?;
        let (doc, created) = self.put_doc(scope, T::KIND, id, body, now).await?;
        Ok((Stored::from_doc(doc)?, created))
    }

    async fn delete_typed<T: Document>(&self, scope: &TenantScope, id: &str) -> StoreResult<bool> {
        self.delete_doc(scope, T::KIND, id).await
    }
}
