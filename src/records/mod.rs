//! Call records in SQLite: one row per call (who, when, how it ended,
//! where it went) and one per caller turn (what was said, what the agent
//! understood, why it routed as it did, and how long each stage took).
//!
//! The store is blocking (rusqlite); async code calls it through
//! `tokio::task::spawn_blocking`. Writes are small and few (a handful per
//! call), so one connection behind a mutex is enough; WAL mode lets
//! `switchboard calls` read while the agent writes.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The database could not be opened or created.
    #[error("cannot open the call records {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("call records: {0}")]
    Query(#[from] rusqlite::Error),
}

/// The start of a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallStart {
    /// The SIP Call-ID.
    pub call_id: String,
    /// The From URI.
    pub caller: String,
    /// The To URI.
    pub callee: String,
    /// RFC 3339.
    pub started_at: String,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CallEnd {
    /// RFC 3339.
    pub ended_at: String,
    /// `transferred`, `caller_hung_up`, `agent_hung_up`, `transfer_failed`...
    pub outcome: String,
    /// The destination name or URI the call went to.
    pub destination: Option<String>,
    /// What the transfer reported (e.g. `REFER accepted, target answered 200`).
    pub transfer_result: Option<String>,
}

/// One caller turn.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TurnRecord {
    /// 0 for the first turn.
    pub index: u32,
    /// RFC 3339, when the caller started speaking (or pressed a key).
    pub at: String,
    /// What the recogniser heard, or `DTMF 2`.
    pub transcript: String,
    /// The intent, if one was recognised.
    pub intent: Option<String>,
    /// The detector's confidence.
    pub confidence: Option<f32>,
    /// Why the call was routed as it was, if it was.
    pub route_reason: Option<String>,
    /// End of speech to transcript, ms.
    pub stt_ms: Option<u32>,
    /// Transcript to intent, ms.
    pub intent_ms: Option<u32>,
    /// Intent to the first audio of the reply, ms.
    pub tts_ms: Option<u32>,
    /// End of the caller's speech to the first audio of the reply, ms.
    pub reply_ms: Option<u32>,
}

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// The start.
    #[serde(flatten)]
    pub start: CallStart,
    /// The end, once the call is over.
    #[serde(flatten)]
    pub end: Option<CallEnd>,
    /// Its turns, in order (empty in listings).
    pub turns: Vec<TurnRecord>,
}

/// The call records database.
#[derive(Debug)]
pub struct Store {
    connection: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT,
    destination TEXT,
    transfer_result TEXT
);
CREATE INDEX IF NOT EXISTS calls_call_id ON calls (call_id);
CREATE TABLE IF NOT EXISTS turns (
    call INTEGER NOT NULL REFERENCES calls (id),
    turn INTEGER NOT NULL,
    at TEXT NOT NULL,
    transcript TEXT NOT NULL,
    intent TEXT,
    confidence REAL,
    route_reason TEXT,
    stt_ms INTEGER,
    intent_ms INTEGER,
    tts_ms INTEGER,
    reply_ms INTEGER,
    PRIMARY KEY (call, turn)
);
";

/// A call's row in the store, returned by [`Store::start_call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRow(i64);

impl Store {
    /// Opens (creating if need be) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, RecordsError> {
        let open_error = |source| RecordsError::Open {
            path: path.display().to_string(),
            source,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        // WAL with NORMAL loses at most the last transactions on a power
        // cut, never the database, and does not fsync every record.
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        connection.execute_batch(SCHEMA).map_err(open_error)?;
        Ok(Store {
            connection: Mutex::new(connection),
        })
    }

    /// An in-memory store, for tests and `--db :memory:`.
    pub fn in_memory() -> Result<Store, RecordsError> {
        let connection = Connection::open_in_memory()?;
        connection.execute_batch(SCHEMA)?;
        Ok(Store {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the start of a call.
    pub fn start_call(&self, start: &CallStart) -> Result<CallRow, RecordsError> {
        let connection = self.connection();
        connection.execute(
            "INSERT INTO calls (call_id, caller, callee, started_at) VALUES (?1, ?2, ?3, ?4)",
            params![start.call_id, start.caller, start.callee, start.started_at],
        )?;
        Ok(CallRow(connection.last_insert_rowid()))
    }

    /// Records one turn of a call.
    pub fn add_turn(&self, call: CallRow, turn: &TurnRecord) -> Result<(), RecordsError> {
        self.connection().execute(
            "INSERT OR REPLACE INTO turns (call, turn, at, transcript, intent, confidence, \
             route_reason, stt_ms, intent_ms, tts_ms, reply_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                call.0,
                turn.index,
                turn.at,
                turn.transcript,
                turn.intent,
                turn.confidence,
                turn.route_reason,
                turn.stt_ms,
                turn.intent_ms,
                turn.tts_ms,
                turn.reply_ms
            ],
        )?;
        Ok(())
    }

    /// Records how a call ended.
    pub fn end_call(&self, call: CallRow, end: &CallEnd) -> Result<(), RecordsError> {
        self.connection().execute(
            "UPDATE calls SET ended_at = ?2, outcome = ?3, destination = ?4, transfer_result = ?5 \
             WHERE id = ?1",
            params![
                call.0,
                end.ended_at,
                end.outcome,
                end.destination,
                end.transfer_result
            ],
        )?;
        Ok(())
    }

    /// The latest `limit` calls, newest first, without their turns.
    pub fn list(&self, limit: u32) -> Result<Vec<CallRecord>, RecordsError> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT call_id, caller, callee, started_at, ended_at, outcome, destination, \
             transfer_result FROM calls ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map(params![limit], call_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One call with its turns: the latest with this Call-ID.
    pub fn show(&self, call_id: &str) -> Result<Option<CallRecord>, RecordsError> {
        let connection = self.connection();
        let found = connection
            .query_row(
                "SELECT call_id, caller, callee, started_at, ended_at, outcome, destination, \
                 transfer_result, id FROM calls WHERE call_id = ?1 ORDER BY id DESC LIMIT 1",
                params![call_id],
                |row| Ok((call_from_row(row)?, row.get::<_, i64>(8)?)),
            )
            .optional()?;
        let Some((mut call, id)) = found else {
            return Ok(None);
        };
        let mut statement = connection.prepare(
            "SELECT turn, at, transcript, intent, confidence, route_reason, stt_ms, intent_ms, \
             tts_ms, reply_ms FROM turns WHERE call = ?1 ORDER BY turn",
        )?;
        let turns = statement.query_map(params![id], |row| {
            Ok(TurnRecord {
                index: row.get(0)?,
                at: row.get(1)?,
                transcript: row.get(2)?,
                intent: row.get(3)?,
                confidence: row.get::<_, Option<f64>>(4)?.map(|c| c as f32),
                route_reason: row.get(5)?,
                stt_ms: row.get(6)?,
                intent_ms: row.get(7)?,
                tts_ms: row.get(8)?,
                reply_ms: row.get(9)?,
            })
        })?;
        call.turns = turns.collect::<Result<Vec<_>, _>>()?;
        Ok(Some(call))
    }
}

fn call_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CallRecord> {
    let ended_at: Option<String> = row.get(4)?;
    Ok(CallRecord {
        start: CallStart {
            call_id: row.get(0)?,
            caller: row.get(1)?,
            callee: row.get(2)?,
            started_at: row.get(3)?,
        },
        end: match ended_at {
            Some(ended_at) => Some(CallEnd {
                ended_at,
                outcome: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                destination: row.get(6)?,
                transfer_result: row.get(7)?,
            }),
            None => None,
        },
        turns: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_with_turns_round_trips() {
        let store = Store::in_memory().unwrap();
        let row = store
            .start_call(&CallStart {
                call_id: "abc@10.0.0.1".into(),
                caller: "sip:+15551234@pbx".into(),
                callee: "sip:200@pbx".into(),
                started_at: "2026-11-26T10:00:00Z".into(),
            })
            .unwrap();
        let turn = TurnRecord {
            index: 0,
            at: "2026-11-26T10:00:04Z".into(),
            transcript: "I was charged twice".into(),
            intent: Some("billing".into()),
            confidence: Some(0.82),
            route_reason: Some("intent billing -> billing".into()),
            stt_ms: Some(210),
            intent_ms: Some(4),
            tts_ms: Some(90),
            reply_ms: Some(420),
        };
        store.add_turn(row, &turn).unwrap();
        assert_eq!(store.list(10).unwrap()[0].end, None, "still in progress");
        let end = CallEnd {
            ended_at: "2026-11-26T10:00:09Z".into(),
            outcome: "transferred".into(),
            destination: Some("billing".into()),
            transfer_result: Some("REFER: 200".into()),
        };
        store.end_call(row, &end).unwrap();
        let call = store.show("abc@10.0.0.1").unwrap().unwrap();
        assert_eq!(call.end, Some(end));
        assert_eq!(call.turns, vec![turn]);
        assert!(store.show("nobody").unwrap().is_none());
    }

    #[test]
    fn a_file_store_is_created_and_reopened() {
        let dir = std::env::temp_dir().join(format!("sb-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("calls.db");
        let _ = std::fs::remove_file(&path);
        {
            let store = Store::open(&path).unwrap();
            store
                .start_call(&CallStart {
                    call_id: "x".into(),
                    caller: "a".into(),
                    callee: "b".into(),
                    started_at: "t".into(),
                })
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.list(5).unwrap().len(), 1);
        let bad = Store::open(&dir.join("no/such/dir/calls.db")).unwrap_err();
        assert!(
            bad.to_string().starts_with("cannot open the call records"),
            "{bad}"
        );
    }
}
