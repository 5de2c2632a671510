//! Identity on MongoDB: collections `tenants`, `users` (unique email) and `tokens` (keyed by the
//! token hash).

use async_trait::async_trait;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{MongoStore, conflict, corrupt, ms, retrying, text, time};
use crate::auth::Role;
use crate::chain::Entry;
use crate::store::backend::IdentityBackend;
use crate::store::{Revoke, StoreResult, Tenant, TokenKind, TokenRecord, User};

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
    let kind = text(d, "kind")?;
    let role = d.get_str("role").ok();
    Ok(TokenRecord {
        hash: text(d, "_id")?,
        kind: TokenKind::parse(&kind).ok_or_else(|| corrupt("token kind", &kind))?,
        user_id: text(d, "user_id")?,
        family: text(d, "family")?,
        name: text(d, "name")?,
        role: role
            .map(|r| Role::parse(r).ok_or_else(|| corrupt("token role", r)))
            .transpose()?,
        created_at: time(d, "created_at").ok_or_else(|| corrupt("created_at", "missing"))?,
        expires_at: time(d, "expires_at").ok_or_else(|| corrupt("expires_at", "missing"))?,
        used_at: time(d, "used_at"),
        revoked_at: time(d, "revoked_at"),
        last_used_at: time(d, "last_used_at"),
    })
}

impl MongoStore {
    async fn find_users(&self, filter: Document) -> StoreResult<Vec<User>> {
        let docs = self.find_sorted("users", filter, doc! {"email": 1}).await?;
        docs.into_iter().map(|d| without_id("user", d)).collect()
    }

    async fn find_user(&self, filter: Document) -> StoreResult<Option<User>> {
        self.collection("users")
            .find_one(filter)
            .await?
            .map(|d| without_id("user", d))
            .transpose()
    }
}

#[async_trait]
impl IdentityBackend for MongoStore {
    async fn create_tenant(&self, tenant: &Tenant, audit: Entry) -> StoreResult<()> {
        let d = with_id(tenant.id.as_str(), tenant)?;
        retrying(|| async {
            let mut session = self.begin().await?;
            self.collection("tenants")
                .insert_one(d.clone())
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, &format!("tenant {}", tenant.id)))?;
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn save_tenant(&self, tenant: &Tenant, audit: Entry) -> StoreResult<bool> {
        let d = with_id(tenant.id.as_str(), tenant)?;
        retrying(|| async {
            let mut session = self.begin().await?;
            let r = self
                .collection("tenants")
                .replace_one(doc! {"_id": tenant.id.as_str()}, d.clone())
                .session(&mut session)
                .await?;
            self.commit_audited(session, r.matched_count == 1, &audit).await
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.collection("tenants")
            .find_one(doc! {"_id": id.as_str()})
            .await?
            .map(|d| without_id("tenant", d))
            .transpose()
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let docs = self.find_sorted("tenants", doc! {}, doc! {"_id": 1}).await?;
        docs.into_iter().map(|d| without_id("tenant", d)).collect()
    }

    async fn create_user(&self, user: &User, audit: Entry) -> StoreResult<()> {
        let d = with_id(&user.id, user)?;
        retrying(|| async {
            let mut session = self.begin().await?;
            self.collection("users")
                .insert_one(d.clone())
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "a user with this email"))?;
            self.append_audit(&mut session, audit.clone()).await?;
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

    async fn list_users(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<User>> {
        match tenant {
            Some(t) => self.find_users(doc! {"tenant_id": t.as_str()}).await,
            None => self.find_users(doc! {"tenant_id": null}).await,
        }
    }

    async fn save_user(&self, user: &User, audit: Entry) -> StoreResult<bool> {
        // Every field but the second-factor step, which only moves forward.
        let mut set = bson::to_document(user).map_err(|e| corrupt("serialising record", e))?;
        let step = set.remove("totp_last_step");
        let mut update = doc! {"$set": set};
        if let Some(step) = step {
            update.insert("$max", doc! {"totp_last_step": step});
        }
        let tenant = user.tenant_id.as_ref().map(TenantId::as_str);
        retrying(|| async {
            let mut session = self.begin().await?;
            // The tenant is part of the condition: a user never moves between tenants here.
            let r = self
                .collection("users")
                .update_one(doc! {"_id": &user.id, "tenant_id": tenant}, update.clone())
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "a user with this email"))?;
            self.commit_audited(session, r.matched_count == 1, &audit).await
        })
        .await
    }

    async fn delete_user(&self, tenant: &TenantId, id: &str, audit: Entry) -> StoreResult<bool> {
        retrying(|| async {
            let mut session = self.begin().await?;
            let r = self
                .collection("users")
                .delete_one(doc! {"_id": id, "tenant_id": tenant.as_str()})
                .session(&mut session)
                .await?;
            if r.deleted_count == 0 {
                return Ok(false);
            }
            self.collection("tokens")
                .delete_many(doc! {"user_id": id})
                .session(&mut session)
                .await?;
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(true)
        })
        .await
    }

    async fn advance_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let r = self
            .collection("users")
            .update_one(
                doc! {"_id": user_id, "$or": [
                    {"totp_last_step": {"$lt": step}},
                    {"totp_last_step": {"$exists": false}},
                    {"totp_last_step": null},
                ]},
                doc! {"$set": {"totp_last_step": step}},
            )
            .await?;
        Ok(r.matched_count == 1)
    }

    async fn insert_token(&self, token: &TokenRecord, audit: Option<Entry>) -> StoreResult<()> {
        let d = token_doc(token);
        let Some(audit) = audit else {
            self.collection("tokens")
                .insert_one(d)
                .await
                .map_err(|e| conflict(e, "token"))?;
            return Ok(());
        };
        retrying(|| async {
            let mut session = self.begin().await?;
            self.collection("tokens")
                .insert_one(d.clone())
                .session(&mut session)
                .await
                .map_err(|e| conflict(e, "token"))?;
            self.append_audit(&mut session, audit.clone()).await?;
            session.commit_transaction().await?;
            Ok(())
        })
        .await
    }

    async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.collection("tokens")
            .find_one(doc! {"_id": hash})
            .await?
            .as_ref()
            .map(token_from_doc)
            .transpose()
    }

    async fn consume_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let r = self
            .collection("tokens")
            .update_one(
                doc! {"_id": hash, "used_at": null, "revoked_at": null},
                doc! {"$set": {"used_at": ms(at)}},
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    async fn revoke_tokens(&self, which: Revoke<'_>, at: DateTime<Utc>, audit: Option<Entry>) -> StoreResult<u64> {
        let filter = match which {
            Revoke::User(user, kind) => doc! {"user_id": user, "kind": kind.as_str(), "revoked_at": null},
            Revoke::AllOfUser(user) => doc! {"user_id": user, "revoked_at": null},
            Revoke::Family { user, family } => doc! {"user_id": user, "family": family, "revoked_at": null},
        };
        let update = doc! {"$set": {"revoked_at": ms(at)}};
        let Some(audit) = audit else {
            return Ok(self
                .collection("tokens")
                .update_many(filter, update)
                .await?
                .modified_count);
        };
        retrying(|| async {
            let mut session = self.begin().await?;
            let n = self
                .collection("tokens")
                .update_many(filter.clone(), update.clone())
                .session(&mut session)
                .await?
                .modified_count;
            if n > 0 {
                self.append_audit(&mut session, audit.clone()).await?;
            }
            session.commit_transaction().await?;
            Ok(n)
        })
        .await
    }

    async fn session_live(&self, user_id: &str, family: &str) -> StoreResult<bool> {
        let live = self
            .collection("tokens")
            .find_one(doc! {"family": family, "user_id": user_id, "kind": "refresh", "revoked_at": null})
            .await?;
        Ok(live.is_some())
    }

    async fn list_tokens(&self, user_id: &str, kind: TokenKind) -> StoreResult<Vec<TokenRecord>> {
        let filter = doc! {"user_id": user_id, "kind": kind.as_str()};
        let docs = self
            .find_sorted("tokens", filter, doc! {"created_at": -1, "_id": 1})
            .await?;
        docs.iter().map(token_from_doc).collect()
    }

    async fn touch_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        self.collection("tokens")
            .update_one(doc! {"_id": hash}, doc! {"$set": {"last_used_at": ms(at)}})
            .await?;
        Ok(())
    }
}
