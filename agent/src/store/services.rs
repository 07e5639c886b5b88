//! Services in the store: one row per service name, the ECS service document (with its
//! deployments and events) as the body.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError};

impl Store {
    /// Creates or replaces the service `name`.
    pub fn put_service<T: Serialize>(
        &mut self,
        name: &str,
        status: &str,
        created_at: f64,
        service: &T,
    ) -> Result<()> {
        let body = serde_json::to_string(service)
            .map_err(|e| StoreError::Corrupt(format!("service {name}"), e))?;
        self.conn.execute(
            "INSERT INTO services (name, status, created_at, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET
                status = excluded.status, created_at = excluded.created_at,
                body = excluded.body",
            params![name, status, created_at, body],
        )?;
        Ok(())
    }

    pub fn service<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>> {
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM services WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        body.map(|b| {
            serde_json::from_str(&b).map_err(|e| StoreError::Corrupt(format!("service {name}"), e))
        })
        .transpose()
    }

    /// Services in creation order; with `statuses`, only those in one of them.
    pub fn services<T: for<'de> Deserialize<'de>>(&self, statuses: &[&str]) -> Result<Vec<T>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, status, body FROM services ORDER BY created_at, name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, status, body) = row?;
            if !statuses.is_empty() && !statuses.contains(&status.as_str()) {
                continue;
            }
            out.push(
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("service {name}"), e))?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn services_are_stored_replaced_and_filtered_by_status() {
        let mut s = Store::open_in_memory().unwrap();
        s.put_service("web", "ACTIVE", 1.0, &json!({"serviceName": "web", "n": 1}))
            .unwrap();
        s.put_service("db", "ACTIVE", 2.0, &json!({"serviceName": "db"}))
            .unwrap();
        s.put_service(
            "web",
            "INACTIVE",
            1.0,
            &json!({"serviceName": "web", "n": 2}),
        )
        .unwrap();
        let web: Value = s.service("web").unwrap().unwrap();
        assert_eq!(web["n"], 2);
        assert!(s.service::<Value>("nope").unwrap().is_none());
        let active: Vec<Value> = s.services(&["ACTIVE"]).unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0]["serviceName"], "db");
        let all: Vec<Value> = s.services(&[]).unwrap();
        assert_eq!(all.len(), 2);
    }
}
