//! [`IdentityRepo`] on MongoDB: collections `tenants`, `users` (unique email) and `tokens`
//! (keyed by the token hash). Filters are built from typed values only.

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use luach_schemas::TenantId;
use mongodb::options::{FindOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::changes;
use super::identity::{IdentityRepo, Revoke, Tenant, TokenKind, TokenRecord, User};
use super::mongo::{is_duplicate_key, retrying};
use super::{MongoStore, StoreError, StoreResult, TenantScope};
use crate::audit::current_actor;
use crate::auth::Role;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// `value` as a document with `_id` = `id`.
fn with_id<T: Serialize>(id: &str, value: &T) -> StoreResult<Document> {
    let mut d = bson::to_document(value).map_err(|e| corrupt("serialising record", e))?;
    d.insert("_id", id);
    Ok(d)
}

fn without_id<T: DeserializeOwned>(what: &str, mut d: Document) -> StoreResult<T> {
    d.remove("_id");
    bson::from_document(d).map_err(|e| corrupt(what, e))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn token_doc(t: &TokenRecord) -> Document {
    doc! {
        "_id": &t.hash,
        "kind": t.kind.as_str(),
        "user_id": &t.user_id,
        "family": &t.family,
        "name": &t.name,
        "role": t.role.map(Role::as_str),
        "created_at": ms(t.created_at),
        "expires_at": ms(t.expires_at),
        "used_at": t.used_at.map(ms),
        "revoked_at": t.revoked_at.map(ms),
        "last_used_at": t.last_used_at.map(ms),
    }
}

fn token_from_doc(d: &Document) -> StoreResult<TokenRecord> {
    let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(|e| corrupt(k, e));
    let time = |k: &str| from_ms(d.get_i64(k).ok());
    let kind = text("kind")?;
    let role = d.get_str("role").ok();
    Ok(TokenRecord {
        hash: text("_id")?,
        kind: TokenKind::parse(&kind).ok_or_else(|| corrupt("token kind", &kind))?,
        user_id: text("user_id")?,
        family: text("family")?,
        name: text("name")?,
        role: role
            .map(|r| Role::parse(r).ok_or_else(|| corrupt("token role", r)))
            .transpose()?,
        created_at: time("created_at").ok_or_else(|| corrupt("created_at", "missing"))?,
        expires_at: time("expires_at").ok_or_else(|| corrupt("expires_at", "missing"))?,
        used_at: time("used_at"),
        revoked_at: time("revoked_at"),
        last_used_at: time("last_used_at"),
    })
}

impl MongoStore {
    fn tenants(&self) -> Collection<Document> {
        self.db.collection("tenants")
    }

    fn users(&self) -> Collection<Document> {
        self.db.collection("users")
    }

    fn tokens(&self) -> Collection<Document> {
        self.db.collection("tokens")
    }

    /// Indexes the identity queries rely on (called from `connect`).
    pub(super) async fn create_identity_indexes(&self) -> StoreResult<()> {
        let unique = IndexOptions::builder().unique(true).build();
        self.users()
            .create_index(IndexModel::builder().keys(doc! {"email": 1}).options(unique).build())
            .await?;
        self.users()
            .create_index(IndexModel::builder().keys(doc! {"tenant_id": 1, "email": 1}).build())
            .await?;
        self.tokens()
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"user_id": 1, "kind": 1, "created_at": -1})
                    .build(),
            )
            .await?;
        self.tokens()
            .create_index(IndexModel::builder().keys(doc! {"family": 1}).build())
            .await?;
        Ok(())
    }

    async fn find_users(&self, filter: Document) -> StoreResult<Vec<User>> {
        let options = FindOptions::builder().sort(doc! {"email": 1}).build();
        let docs: Vec<Document> = self
            .users()
            .find(filter)
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        docs.into_iter().map(|d| without_id("user", d)).collect()
    }

    async fn find_user(&self, filter: Document) -> StoreResult<Option<User>> {
        self.users()
            .find_one(filter)
            .await?
            .map(|d| without_id("user", d))
            .transpose()
    }
}

fn conflict(e: mongodb::error::Error, what: &str) -> StoreError {
    if is_duplicate_key(&e) {
        StoreError::Conflict { what: what.to_owned() }
    } else {
        e.into()
    }
}

#[async_trait]
impl IdentityRepo for MongoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let actor = current_actor();
        retrying(|| async {
            let mut session = self.begin().await?;
            self.tenants()
                .insert_one(with_id(tenant.id.as_str(), tenant)?)
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, &format!("tenant {}", tenant.id)))?;
            let change = changes::tenant_created(tenant);
            self.append_audit(&mut session, change, actor.clone(), tenant.created_at)
                .await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.tenants()
            .find_one(doc! {"_id": id.as_str()})
            .await?
            .map(|d| without_id("tenant", d))
            .transpose()
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let options = FindOptions::builder().sort(doc! {"_id": 1}).build();
        let docs: Vec<Document> = self
            .tenants()
            .find(doc! {})
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        docs.into_iter().map(|d| without_id("tenant", d)).collect()
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let actor = current_actor();
        retrying(|| async {
            let mut session = self.begin().await?;
            self.users()
                .insert_one(with_id(&user.id, user)?)
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "a user with this email"))?;
            self.append_audit(
                &mut session,
                changes::user_saved(user, "user.create"),
                actor.clone(),
                user.updated_at,
            )
            .await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        self.find_user(doc! {"_id": id}).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.find_user(doc! {"email": email}).await
    }

    async fn list_users(&self, scope: &TenantScope) -> StoreResult<Vec<User>> {
        self.find_users(doc! {"tenant_id": scope.tenant().as_str()}).await
    }

    async fn list_installation_users(&self) -> StoreResult<Vec<User>> {
        self.find_users(doc! {"tenant_id": null}).await
    }

    async fn save_user(&self, user: &User) -> StoreResult<bool> {
        let actor = current_actor();
        retrying(|| async {
            let mut session = self.begin().await?;
            let r = self
                .users()
                .replace_one(doc! {"_id": &user.id}, with_id(&user.id, user)?)
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "a user with this email"))?;
            if r.matched_count == 1 {
                self.append_audit(
                    &mut session,
                    changes::user_saved(user, "user.update"),
                    actor.clone(),
                    user.updated_at,
                )
                .await?;
            }
            session.commit_transaction().await?;
            Ok(r.matched_count == 1)
        })
        .await
    }

    async fn delete_user(&self, scope: &TenantScope, id: &str) -> StoreResult<bool> {
        let actor = current_actor();
        retrying(|| async {
            let mut session = self.begin().await?;
            let r = self
                .users()
                .delete_one(doc! {"_id": id, "tenant_id": scope.tenant().as_str()})
                .session(&mut session)
                .await?;
            if r.deleted_count == 0 {
                return Ok(false);
            }
            self.tokens()
                .delete_many(doc! {"user_id": id})
                .session(&mut session)
                .await?;
            let change = changes::user_deleted(scope.tenant().as_str(), id);
            self.append_audit(&mut session, change, actor.clone(), chrono::Utc::now())
                .await?;
            session.commit_transaction().await?;
            Ok(true)
        })
        .await
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        self.tokens()
            .insert_one(token_doc(token))
            .await
            .map_err(|e| conflict(e, "token"))?;
        Ok(())
    }

    async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.tokens()
            .find_one(doc! {"_id": hash})
            .await?
            .as_ref()
            .map(token_from_doc)
            .transpose()
    }

    async fn consume_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let r = self
            .tokens()
            .update_one(
                doc! {"_id": hash, "used_at": null, "revoked_at": null},
                doc! {"$set": {"used_at": ms(at)}},
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    async fn revoke_tokens(&self, which: Revoke<'_>, at: DateTime<Utc>) -> StoreResult<u64> {
        let filter = match which {
            Revoke::User(user, kind) => doc! {"user_id": user, "kind": kind.as_str(), "revoked_at": null},
            Revoke::Family { user, family } => doc! {"user_id": user, "family": family, "revoked_at": null},
        };
        let r = self
            .tokens()
            .update_many(filter, doc! {"$set": {"revoked_at": ms(at)}})
            .await?;
        Ok(r.modified_count)
    }

    async fn session_live(&self, user_id: &str, family: &str) -> StoreResult<bool> {
        let live = self
            .tokens()
            .find_one(doc! {"family": family, "user_id": user_id, "kind": "refresh", "revoked_at": null})
            .await?;
        Ok(live.is_some())
    }

    async fn list_tokens(&self, user_id: &str, kind: TokenKind) -> StoreResult<Vec<TokenRecord>> {
        let options = FindOptions::builder().sort(doc! {"created_at": -1, "_id": 1}).build();
        let docs: Vec<Document> = self
            .tokens()
            .find(doc! {"user_id": user_id, "kind": kind.as_str()})
            .with_options(options)
            .await?
            .try_collect()
            .await?;
        docs.iter().map(token_from_doc).collect()
    }

    async fn touch_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.tokens()
            .update_one(doc! {"_id": hash}, doc! {"$set": {"last_used_at": ms(at)}})
            .await?;
        Ok(())
    }
}
