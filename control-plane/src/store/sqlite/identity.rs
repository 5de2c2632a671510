//! Identity on SQLite: tenants and users as JSON bodies beside their indexed keys, tokens as
//! plain columns (their state changes are single conditional updates).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use luach_schemas::TenantId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, append_audit, conflict_on_unique, corrupt, from_json, from_ms, ms, time, to_json};
use crate::auth::Role;
use crate::chain::Entry;
use crate::store::backend::IdentityBackend;
use crate::store::{Revoke, StoreError, StoreResult, Tenant, TokenKind, TokenRecord, User};

fn users_where(conn: &Connection, clause: &str, arg: Option<&str>) -> StoreResult<Vec<User>> {
    let sql = format!("SELECT body FROM users WHERE {clause} ORDER BY email");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = match arg {
        Some(a) => stmt.query(params![a])?,
        None => stmt.query([])?,
    };
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_json("user", &row.get::<_, String>(0)?)?);
    }
    Ok(out)
}

fn user_where(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<User>> {
    let sql = format!("SELECT body FROM users WHERE {column} = ?1");
    let text: Option<String> = conn
        .prepare_cached(&sql)?
        .query_row(params![value], |r| r.get(0))
        .optional()?;
    text.map(|t| from_json("user", &t)).transpose()
}

const TOKEN_COLUMNS: &str =
    "hash, kind, user_id, family, name, role, created_at, expires_at, used_at, revoked_at, last_used_at";

fn token_from_row(row: &Row<'_>) -> StoreResult<TokenRecord> {
    let kind: String = row.get(1)?;
    let role: Option<String> = row.get(5)?;
    Ok(TokenRecord {
        hash: row.get(0)?,
        kind: TokenKind::parse(&kind).ok_or_else(|| corrupt("token kind", &kind))?,
        user_id: row.get(2)?,
        family: row.get(3)?,
        name: row.get(4)?,
        role: role
            .map(|r| Role::parse(&r).ok_or_else(|| corrupt("token role", &r)))
            .transpose()?,
        created_at: time(row, 6, "created_at")?,
        expires_at: time(row, 7, "expires_at")?,
        used_at: from_ms(row.get(8)?),
        revoked_at: from_ms(row.get(9)?),
        last_used_at: from_ms(row.get(10)?),
    })
}

#[async_trait]
impl IdentityBackend for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant, audit: Entry) -> StoreResult<()> {
        let (id, text) = (tenant.id.to_string(), to_json(tenant)?);
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "INSERT INTO tenants (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, text],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict {
                    what: format!("tenant {id}"),
                });
            }
            append_audit(tx, audit, key)
        })
        .await
    }

    async fn save_tenant(&self, tenant: &Tenant, audit: Entry) -> StoreResult<bool> {
        let (id, text) = (tenant.id.to_string(), to_json(tenant)?);
        self.transaction(move |tx, key| {
            let n = tx.execute("UPDATE tenants SET body = ?2 WHERE id = ?1", params![id, text])?;
            if n == 1 {
                append_audit(tx, audit, key)?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let id = id.to_string();
        self.read(move |conn| {
            let text: Option<String> = conn
                .prepare_cached("SELECT body FROM tenants WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            text.map(|t| from_json("tenant", &t)).transpose()
        })
        .await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT body FROM tenants ORDER BY id")?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(from_json("tenant", &row.get::<_, String>(0)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn create_user(&self, user: &User, audit: Entry) -> StoreResult<()> {
        let (id, email, tenant, text) = (
            user.id.clone(),
            user.email.clone(),
            user.tenant_id.as_ref().map(ToString::to_string),
            to_json(user)?,
        );
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "INSERT INTO users (id, email, tenant_id, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![id, email, tenant, text],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict {
                    what: "a user with this email".into(),
                });
            }
            append_audit(tx, audit, key)
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.read(move |conn| user_where(conn, "id", &id)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_owned();
        self.read(move |conn| user_where(conn, "email", &email)).await
    }

    async fn list_users(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<User>> {
        let tenant = tenant.map(ToString::to_string);
        self.read(move |conn| match &tenant {
            Some(t) => users_where(conn, "tenant_id = ?1", Some(t)),
            None => users_where(conn, "tenant_id IS NULL", None),
        })
        .await
    }

    async fn save_user(&self, user: &User, audit: Entry) -> StoreResult<bool> {
        let (id, email, tenant, text) = (
            user.id.clone(),
            user.email.clone(),
            user.tenant_id.as_ref().map(ToString::to_string),
            to_json(user)?,
        );
        self.transaction(move |tx, key| {
            // The tenant is part of the condition: a user never moves between tenants here. The
            // second-factor step only moves forward, whatever the saved body says.
            let n = tx
                .execute(
                    "UPDATE users SET email = ?2, body = CASE \
                       WHEN json_extract(body, '$.totp_last_step') IS NOT NULL \
                        AND COALESCE(json_extract(?4, '$.totp_last_step'), -1) < json_extract(body, '$.totp_last_step') \
                       THEN json_set(?4, '$.totp_last_step', json_extract(body, '$.totp_last_step')) \
                       ELSE ?4 END \
                     WHERE id = ?1 AND tenant_id IS ?3",
                    params![id, email, tenant, text],
                )
                .map_err(conflict_on_unique("a user with this email"))?;
            if n > 0 {
                append_audit(tx, audit, key)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn delete_user(&self, tenant: &TenantId, id: &str, audit: Entry) -> StoreResult<bool> {
        let (tenant, id) = (tenant.to_string(), id.to_owned());
        self.transaction(move |tx, key| {
            let n = tx.execute(
                "DELETE FROM users WHERE id = ?1 AND tenant_id = ?2",
                params![id, tenant],
            )?;
            if n > 0 {
                tx.execute("DELETE FROM tokens WHERE user_id = ?1", params![id])?;
                append_audit(tx, audit, key)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn advance_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let id = user_id.to_owned();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE users SET body = json_set(body, '$.totp_last_step', ?2) \
                 WHERE id = ?1 AND COALESCE(json_extract(body, '$.totp_last_step'), -1) < ?2",
                params![id, step],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn insert_token(&self, token: &TokenRecord, audit: Option<Entry>) -> StoreResult<()> {
        let t = token.clone();
        self.transaction(move |tx, key| {
            tx.execute(
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
            if let Some(entry) = audit {
                append_audit(tx, entry, key)?;
            }
            Ok(())
        })
        .await
    }

    async fn token(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"))?;
            let mut rows = stmt.query(params![hash])?;
            rows.next()?.map(token_from_row).transpose()
        })
        .await
    }

    async fn consume_token(&self, hash: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL AND revoked_at IS NULL",
                params![hash, ms(at)],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn revoke_tokens(&self, which: Revoke<'_>, at: DateTime<Utc>, audit: Option<Entry>) -> StoreResult<u64> {
        let (sql, a, b) = match which {
            Revoke::User(user, kind) => (
                "UPDATE tokens SET revoked_at = ?3 WHERE user_id = ?1 AND kind = ?2 AND revoked_at IS NULL",
                user.to_owned(),
                kind.as_str().to_owned(),
            ),
            Revoke::AllOfUser(user) => (
                "UPDATE tokens SET revoked_at = ?3 WHERE user_id = ?1 AND ?2 = ?2 AND revoked_at IS NULL",
                user.to_owned(),
                String::new(),
            ),
            Revoke::Family { user, family } => (
                "UPDATE tokens SET revoked_at = ?3 WHERE user_id = ?1 AND family = ?2 AND revoked_at IS NULL",
                user.to_owned(),
                family.to_owned(),
            ),
        };
        self.transaction(move |tx, key| {
            let n = tx.execute(sql, params![a, b, ms(at)])? as u64;
            if let (true, Some(entry)) = (n > 0, audit) {
                append_audit(tx, entry, key)?;
            }
            Ok(n)
        })
        .await
    }

    async fn session_live(&self, user_id: &str, family: &str) -> StoreResult<bool> {
        let (user, family) = (user_id.to_owned(), family.to_owned());
        self.read(move |conn| {
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
        self.read(move |conn| {
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
        self.write(move |conn| {
            conn.execute(
                "UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1",
                params![hash, ms(at)],
            )?;
            Ok(())
        })
        .await
    }
}
