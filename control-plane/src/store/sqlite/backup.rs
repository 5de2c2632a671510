//! Backup rows on SQLite: each row as a JSON object from column name to value, read in one
//! read transaction (WAL: a snapshot of the last commit, while the server goes on writing),
//! written back one batch per write transaction.

use async_trait::async_trait;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};
use serde_json::{Map, Value as Json};

use super::SqliteStore;
use crate::store::backup::{self, BackupBackend, BackupScope, Owner, RowSink, Table};
use crate::store::{StoreError, StoreResult};

/// In the order a restore writes them: content documents share one table.
fn tables() -> Vec<Table> {
    backup::tables("id", &["documents"])
}

/// The condition choosing `table`'s rows of `scope`, and its one parameter (the tenant).
fn condition(table: &Table, scope: &BackupScope) -> (String, Vec<String>) {
    match (scope, table.owner) {
        (BackupScope::Installation, _) => ("1".to_owned(), vec![]),
        // The installation's rows belong to no tenant.
        (BackupScope::Tenant(_), Owner::Installation) => ("0".to_owned(), vec![]),
        (BackupScope::Tenant(t), Owner::Field(column)) => (format!("{column} = ?1"), vec![t.to_string()]),
        (BackupScope::Tenant(t), Owner::User) => (
            "user_id IN (SELECT id FROM users WHERE tenant_id = ?1)".to_owned(),
            vec![t.to_string()],
        ),
    }
}

/// The statement selecting `table`'s rows of `scope`, and its parameters.
fn select(table: &Table, scope: &BackupScope) -> (String, Vec<String>) {
    let (cond, args) = condition(table, scope);
    (format!("SELECT * FROM {} WHERE {cond}", table.name), args)
}

/// What names a row in a message: its key-like columns.
fn key_of(fields: &Map<String, Json>) -> String {
    [
        "id",
        "email",
        "serial",
        "hash",
        "device_id",
        "tenant_id",
        "tenant",
        "seq",
    ]
    .iter()
    .filter_map(|k| fields.get(*k).map(|v| format!("{k} {v}")))
    .filter(|s| !s.starts_with("hash"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn to_json(v: ValueRef<'_>) -> Json {
    match v {
        ValueRef::Null => Json::Null,
        ValueRef::Integer(i) => Json::from(i),
        ValueRef::Real(f) => Json::from(f),
        ValueRef::Text(t) => Json::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            serde_json::json!({ "$hex": hex })
        }
    }
}

fn from_json(table: &str, column: &str, v: &Json) -> StoreResult<Value> {
    let bad = || StoreError::Corrupt(format!("{table}.{column}: {v} is not a SQLite value"));
    Ok(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Integer(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().ok_or_else(bad)?),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Object(o) => {
            let hex = o.get("$hex").and_then(Json::as_str).ok_or_else(bad)?;
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(bad)?;
            Value::Blob(bytes)
        }
        Json::Array(_) => return Err(bad()),
    })
}

fn export_rows(conn: &Connection, scope: &BackupScope, sink: &mut dyn RowSink) -> StoreResult<()> {
    // One read transaction: every table as of the same commit.
    let tx = conn.unchecked_transaction()?;
    for table in tables().iter().filter(|t| t.in_scope(scope)) {
        let (sql, args) = select(table, scope);
        let mut stmt = tx.prepare(&sql)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        while let Some(row) = rows.next()? {
            let mut out = Map::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                out.insert(column.clone(), to_json(row.get_ref(i)?));
            }
            sink.row(table.name, Json::Object(out))
                .map_err(|e| StoreError::Task(format!("writing the backup: {e}")))?;
        }
    }
    tx.finish()?;
    Ok(())
}

#[async_trait]
impl BackupBackend for SqliteStore {
    fn backup_tables(&self) -> Vec<Table> {
        tables()
    }

    async fn export(&self, scope: &BackupScope, mut sink: Box<dyn RowSink>) -> StoreResult<Box<dyn RowSink>> {
        let scope = scope.clone();
        self.read(move |conn| {
            export_rows(conn, &scope, sink.as_mut())?;
            Ok(sink)
        })
        .await
    }

    async fn import(&self, table: &'static str, rows: Vec<Json>) -> StoreResult<()> {
        self.transaction(move |tx, _| {
            // Column names come from the backup file: only the table's own are accepted.
            let known: Vec<String> = tx
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for row in rows {
                let Json::Object(fields) = row else {
                    return Err(StoreError::Corrupt(format!("{table}: a row is not an object")));
                };
                let mut columns = Vec::with_capacity(fields.len());
                let mut values = Vec::with_capacity(fields.len());
                for (column, value) in &fields {
                    if !known.contains(column) {
                        return Err(StoreError::Corrupt(format!("{table} has no column {column:?}")));
                    }
                    values.push(from_json(table, column, value)?);
                    columns.push(column.as_str());
                }
                let marks = vec!["?"; columns.len()].join(", ");
                let sql = format!("INSERT INTO {table} ({}) VALUES ({marks})", columns.join(", "));
                tx.prepare_cached(&sql)?
                    .execute(params_from_iter(values.iter()))
                    .map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _)
                            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                        {
                            StoreError::Conflict {
                                what: format!("a {table} row of the backup ({})", key_of(&fields)),
                            }
                        }
                        e => e.into(),
                    })?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_rows(&self, table: &'static str, scope: &BackupScope) -> StoreResult<u64> {
        let table =
            backup::table_named(&tables(), table).ok_or_else(|| StoreError::Corrupt(format!("no table {table}")))?;
        let (cond, args) = condition(&table, scope);
        self.transaction(move |tx, _| {
            let n = tx.execute(
                &format!("DELETE FROM {} WHERE {cond}", table.name),
                params_from_iter(args.iter()),
            )?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn count_rows(&self, table: &'static str, scope: &BackupScope) -> StoreResult<u64> {
        let table =
            backup::table_named(&tables(), table).ok_or_else(|| StoreError::Corrupt(format!("no table {table}")))?;
        let scope = scope.clone();
        self.read(move |conn| {
            let (sql, args) = select(&table, &scope);
            let n: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM ({sql})"),
                params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables never backed up (see [`backup::tables`]).
    const NOT_BACKED_UP: &[&str] = &["leases", "schema_migrations"];

    #[test]
    fn every_table_of_the_schema_is_backed_up_or_deliberately_not() -> StoreResult<()> {
        let mut conn = Connection::open_in_memory()?;
        super::super::migrations::run(&mut conn, false)?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let backed_up = super::tables();
        for table in &tables {
            assert!(
                backed_up.iter().any(|t| t.name == table) || NOT_BACKED_UP.contains(&table.as_str()),
                "table {table} is neither backed up nor listed as not backed up"
            );
        }
        for t in &backed_up {
            assert!(
                tables.iter().any(|name| name == t.name),
                "{} is not in the schema",
                t.name
            );
        }
        Ok(())
    }
}
