//! The reader connections: taken by one blocking task at a time, given back when it is done.

use std::sync::{Condvar, Mutex};

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

/// A fixed set of reader connections. A task that finds none free waits for one (the writer is
/// never among them, so reads never wait for a write to finish).
pub(in crate::store) struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl ReaderPool {
    pub(in crate::store) fn new(connections: Vec<Connection>) -> Self {
        Self {
            idle: Mutex::new(connections),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` with a free connection (blocking the calling thread until one is free).
    pub(in crate::store) fn with<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let poisoned = |_| StoreError::Task("sqlite reader pool lock poisoned".into());
        let conn = {
            let mut idle = self.idle.lock().map_err(poisoned)?;
            loop {
                if let Some(conn) = idle.pop() {
                    break conn;
                }
                idle = self.freed.wait(idle).map_err(poisoned)?;
            }
        };
        // Give the connection back even if `f` panics.
        struct Return<'a> {
            pool: &'a ReaderPool,
            conn: Option<Connection>,
        }
        impl Drop for Return<'_> {
            fn drop(&mut self) {
                if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.pool.idle.lock()) {
                    idle.push(conn);
                    self.pool.freed.notify_one();
                }
            }
        }
        let guard = Return {
            pool: self,
            conn: Some(conn),
        };
        match &guard.conn {
            Some(conn) => f(conn),
            None => Err(StoreError::Task("sqlite reader vanished".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_task_gets_a_connection_and_gives_it_back() {
        let conns = (0..2).filter_map(|_| Connection::open_in_memory().ok()).collect();
        let pool = Arc::new(ReaderPool::new(conns));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    pool.with(|c| Ok(c.query_row("SELECT ?1 + 1", [i], |r| r.get::<_, i64>(0))?))
                })
            })
            .collect();
        let mut sum = 0;
        for t in threads {
            sum += t.join().ok().and_then(Result::ok).unwrap_or(-100);
        }
        assert_eq!(sum, (1..=8).sum::<i64>());
        assert_eq!(pool.idle.lock().map(|v| v.len()).unwrap_or(0), 2);
    }
}
