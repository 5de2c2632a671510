//! [`IdentityRepo`] on SQLite: tenants and users as JSON bodies beside their indexed keys,
//! tokens as plain columns (their state changes are single conditional updates).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::changes;
use super::identity::{IdentityRepo, Revoke, Tenant, TokenKind, TokenRecord, User};
use super::sqlite::{append_audit, corrupt, from_ms, ms};
use super::{SqliteStore, StoreError, StoreResult, TenantScope};
use crate::audit::current_actor;
use crate::auth::Role;

fn body<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| corrupt("serialising record", e))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn users_where(conn: &Connection, clause: &str, arg: Option<&str>) -> StoreResult<Vec<User>> {
    let sql = format!("SELECT body FROM users WHERE {clause} ORDER BY email");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = match arg {
        Some(a) => stmt.query(params![a])?,
        None => stmt.query([])?,
    };
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(parse("user", &row.get::<_, String>(0)?)?);
    }
    Ok(out)
}

fn user_where(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<User>> {
    let sql = format!("SELECT body FROM users WHERE {column} = ?1");
    let text: Option<String> = conn
        .prepare_cached(&sql)?
        .query_row(params![value], |r| r.get(0))
        .optional()?;
    text.map(|t| parse("user", &t)).transpose()
}

const TOKEN_COLUMNS: &str =
    "hash, kind, user_id, family, name, role, created_at, expires_at, used_at, revoked_at, last_used_at";

fn token_from_row(row: &Row<'_>) -> StoreResult<TokenRecord> {
    let kind: String = row.get(1)?;
    let role: Option<String> = row.get(5)?;
    let required = |i: usize, what: &str| -> StoreResult<DateTime<Utc>> {
        from_ms(row.get(i)?).ok_or_else(|| corrupt(what, "missing"))
    };
    Ok(TokenRecord {
        hash: row.get(0)?,
        kind: TokenKind::parse(&kind).ok_or_else(|| corrupt("token kind", &kind))?,
        user_id: row.get(2)?,
        family: row.get(3)?,
        name: row.get(4)?,
        role: role
            .map(|r| Role::parse(&r).ok_or_else(|| corrupt("token role", &r)))
            .transpose()?,
        created_at: required(6, "created_at")?,
        expires_at: required(7, "expires_at")?,
        used_at: from_ms(row.get(8)?),
        revoked_at: from_ms(row.get(9)?),
        last_used_at: from_ms(row.get(10)?),
    })
}

#[async_trait]
impl IdentityRepo for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let (id, text) = (tenant.id.to_string(), body(tenant)?);
        let (actor, change, at) = (current_actor(), changes::tenant_created(tenant), tenant.created_at);
        self.with(move |conn| {
            let conn = conn.transaction()?;
            let n = conn.execute(
                "INSERT INTO tenants (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, text],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict {
                    what: format!("tenant {id}"),
                });
            }
            append_audit(&conn, change, actor, at)?;
            conn.commit()?;
            Ok(())
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let id = id.to_string();
        self.with(move |conn| {
            let text: Option<String> = conn
                .prepare_cached("SELECT body FROM tenants WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            text.map(|t| parse("tenant", &t)).transpose()
        })
        .await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT body FROM tenants ORDER BY id")?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(parse("tenant", &row.get::<_, String>(0)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let (id, email, tenant, text) = (
            user.id.clone(),
            user.email.clone(),
            user.tenant_id.as_ref().map(ToString::to_string),
            body(user)?,
        );
        let (actor, change) = (current_actor(), changes::user_saved(user, "user.create"));
        let at = user.updated_at;
        self.with(move |conn| {
            let conn = conn.transaction()?;
            let n = conn.execute(
                "INSERT INTO users (id, email, tenant_id, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![id, email, tenant, text],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict {
                    what: "a user with this email".into(),
                });
            }
            append_audit(&conn, change, actor, at)?;
            conn.commit()?;
            Ok(())
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.with(move |conn| user_where(conn, "id", &id)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_owned();
        self.with(move |conn| user_where(conn, "email", &email)).await
    }

    async fn list_users(&self, scope: &TenantScope) -> StoreResult<Vec<User>> {
        let tenant = scope.tenant().to_string();
        self.with(move |conn| users_where(conn, "tenant_id = ?1", Some(&tenant)))
            .await
    }

    async fn list_installation_users(&self) -> StoreResult<Vec<User>> {
        self.with(|conn| users_where(conn, "tenant_id IS NULL", None)).await
    }

    async fn save_user(&self, user: &User) -> StoreResult<bool> {
        let (id, email, tenant, text) = (
            user.id.clone(),
            user.email.clone(),
            user.tenant_id.as_ref().map(ToString::to_string),
            body(user)?,
        );
        let (actor, change) = (current_actor(), changes::user_saved(user, "user.update"));
        let at = user.updated_at;
        self.with(move |conn| {
            let conn = conn.transaction()?;
            let n = conn
                .execute(
                    "UPDATE users SET email = ?2, tenant_id = ?3, body = ?4 WHERE id = ?1",
                    params![id, email, tenant, text],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        StoreError::Conflict {
                            what: "a user with this email".into(),
                        }
                    }
                    other => other.into(),
                })?;
            if n > 0 {
                append_audit(&conn, change, actor, at)?;
            }
            conn.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_user(&self, scope: &TenantScope, id: &str) -> StoreResult<bool> {
        let (tenant, id) = (scope.tenant().to_string(), id.to_owned());
        let actor = current_actor();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "DELETE FROM users WHERE id = ?1 AND tenant_id = ?2",
                params![id, tenant],
            )?;
            if n > 0 {
                tx.execute("DELETE FROM tokens WHERE user_id = ?1", params![id])?;
                let change = changes::user_deleted(&tenant, &id);
                append_audit(&tx, change, actor, chrono::Utc::now())?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let t = token.clone();
        self.with(move |conn| {
            conn.execute(
                &format!("INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    t.hash,
                    t.kind.as_str(),
                    t.user_id,
                    t.family,
                    t.name,
                    t.role.map(Role::as_str),
                    ms(t.created_at),
                    ms(t.expires_at),
                    t.used_at.map(ms),
                    t.revoked_at.map(ms),
                    t.last_used_at.map(ms),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"))?;
            let mut rows = stmt.query(params![hash])?;
            rows.next()?.map(token_from_row).transpose()
        })
        .await
    }

    async fn consume_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.with(move |conn| {
            let n = conn.execute(
                "UPDATE tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL AND revoked_at IS NULL",
                params![hash, ms(at)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn revoke_tokens(&self, which: Revoke<'_>, at: DateTime<Utc>) -> StoreResult<u64> {
        let (sql, a, b) = match which {
            Revoke::User(user, kind) => (
                "UPDATE tokens SET revoked_at = ?3 WHERE user_id = ?1 AND kind = ?2 AND revoked_at IS NULL",
                user.to_owned(),
                kind.as_str().to_owned(),
            ),
            Revoke::Family { user, family } => (
                "UPDATE tokens SET revoked_at = ?3 WHERE user_id = ?1 AND family = ?2 AND revoked_at IS NULL",
                user.to_owned(),
                family.to_owned(),
            ),
        };
        self.with(move |conn| Ok(conn.execute(sql, params![a, b, ms(at)])? as u64))
            .await
    }

    async fn session_live(&self, user_id: &str, family: &str) -> StoreResult<bool> {
        let (user, family) = (user_id.to_owned(), family.to_owned());
        self.with(move |conn| {
            let live: Option<i64> = conn
                .prepare_cached(
                    "SELECT 1 FROM tokens WHERE family = ?2 AND user_id = ?1 AND kind = 'refresh' AND revoked_at IS NULL LIMIT 1",
                )?
                .query_row(params![user, family], |r| r.get(0))
                .optional()?;
            Ok(live.is_some())
        })
        .await
    }

    async fn list_tokens(&self, user_id: &str, kind: TokenKind) -> StoreResult<Vec<TokenRecord>> {
        let user = user_id.to_owned();
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = ?1 AND kind = ?2 ORDER BY created_at DESC, hash"
            ))?;
            let mut rows = stmt.query(params![user, kind.as_str()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(token_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn touch_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let hash = hash.to_owned();
        self.with(move |conn| {
            conn.execute(
                "UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1",
                params![hash, ms(at)],
            )?;
            Ok(())
        })
        .await
    }
}
