//! Schedules in the `schedules` table: the schedule document as the body, whether it is
//! enabled, and when it last fired (what a restarted agent reads to fire a missed slot
//! once, and never twice).

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError};

/// A schedule row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSchedule {
    pub name: String,
    pub enabled: bool,
    pub created_at: f64,
    pub last_fired_at: Option<f64>,
    pub body: serde_json::Value,
}

impl Store {
    /// Adds a schedule; false (and nothing written) when the name is taken.
    pub fn insert_schedule(&mut self, s: &StoredSchedule) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO schedules (name, enabled, created_at, last_fired_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
            params![
                s.name,
                s.enabled,
                s.created_at,
                s.last_fired_at,
                s.body.to_string()
            ],
        )?;
        Ok(n == 1)
    }

    /// Replaces a schedule's body and enabled flag; false when there is no such schedule.
    pub fn update_schedule(
        &mut self,
        name: &str,
        enabled: bool,
        body: &serde_json::Value,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE schedules SET enabled = ?2, body = ?3 WHERE name = ?1",
            params![name, enabled, body.to_string()],
        )?;
        Ok(n == 1)
    }

    /// Records a firing (before the task runs, so that a crash cannot fire it twice),
    /// with the body and enabled flag it leaves; false when the schedule is gone.
    pub fn record_schedule_fired(
        &mut self,
        name: &str,
        fired_at: f64,
        enabled: bool,
        body: &serde_json::Value,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE schedules SET last_fired_at = ?2, enabled = ?3, body = ?4 WHERE name = ?1",
            params![name, fired_at, enabled, body.to_string()],
        )?;
        Ok(n == 1)
    }

    pub fn schedule(&self, name: &str) -> Result<Option<StoredSchedule>> {
        let row = self
            .conn
            .query_row(
                "SELECT name, enabled, created_at, last_fired_at, body
                 FROM schedules WHERE name = ?1",
                [name],
                read_schedule,
            )
            .optional()?;
        row.map(finish_schedule).transpose()
    }

    /// Every schedule, by name.
    pub fn schedules(&self) -> Result<Vec<StoredSchedule>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, enabled, created_at, last_fired_at, body FROM schedules ORDER BY name",
        )?;
        let rows = stmt.query_map([], read_schedule)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(finish_schedule(row?)?);
        }
        Ok(out)
    }

    /// False when there was no such schedule.
    pub fn delete_schedule(&mut self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM schedules WHERE name = ?1", [name])?;
        Ok(n == 1)
    }
}

type ScheduleRow = (String, bool, f64, Option<f64>, String);

fn read_schedule(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn finish_schedule(row: ScheduleRow) -> Result<StoredSchedule> {
    let (name, enabled, created_at, last_fired_at, body) = row;
    let body = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("schedule {name}"), e))?;
    Ok(StoredSchedule {
        name,
        enabled,
        created_at,
        last_fired_at,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schedules_are_added_once_updated_fired_and_deleted() {
        let mut s = Store::open_in_memory().unwrap();
        let row = StoredSchedule {
            name: "nightly".into(),
            enabled: true,
            created_at: 1.0,
            last_fired_at: None,
            body: json!({"Name": "nightly"}),
        };
        assert!(s.insert_schedule(&row).unwrap());
        assert!(
            !s.insert_schedule(&StoredSchedule {
                body: json!({}),
                ..row.clone()
            })
            .unwrap()
        );
        assert_eq!(s.schedule("nightly").unwrap(), Some(row.clone()));
        assert!(
            s.update_schedule("nightly", false, &json!({"x": 1}))
                .unwrap()
        );
        assert!(
            s.record_schedule_fired("nightly", 5.0, false, &json!({"x": 2}))
                .unwrap()
        );
        let got = s.schedule("nightly").unwrap().unwrap();
        assert_eq!((got.enabled, got.last_fired_at), (false, Some(5.0)));
        assert_eq!(got.body, json!({"x": 2}));
        assert_eq!(s.schedules().unwrap().len(), 1);
        assert!(!s.update_schedule("other", true, &json!({})).unwrap());
        assert!(s.delete_schedule("nightly").unwrap());
        assert!(!s.delete_schedule("nightly").unwrap());
        assert!(s.schedule("nightly").unwrap().is_none());
    }
}
