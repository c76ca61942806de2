//! The review database (SQLite, WAL mode): raters, items and answers.
//!
//! Every answer is one row, inserted in its own transaction together with its rater, so an
//! answer the server acknowledged survives the server being killed the next moment. Several
//! servers (or raters on one server) may write to the same file: SQLite serialises the writers
//! and each waits up to [`BUSY_TIMEOUT`] for the others.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use super::items::ItemInfo;
use super::{ANSWERS, ReviewError};

/// Layout of the tables (SQLite's `user_version`); a database with another one is refused.
pub const STORE_VERSION: i64 = 1;

/// How long a writer waits for another one holding the database.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS raters (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS items (
    id          TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    arch        TEXT,
    method      TEXT NOT NULL,
    class       TEXT NOT NULL,
    class_index INTEGER NOT NULL,
    prob        REAL,
    input       TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    id          INTEGER PRIMARY KEY,
    rater_id    INTEGER NOT NULL REFERENCES raters(id),
    item_id     TEXT NOT NULL REFERENCES items(id),
    answer      TEXT NOT NULL CHECK (answer IN ('correct', 'partly', 'wrong', 'unsure')),
    tags        TEXT NOT NULL DEFAULT '',
    click_x     REAL,
    click_y     REAL,
    answered_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    duration_ms INTEGER
);
CREATE INDEX IF NOT EXISTS answers_by_rater ON answers(rater_id, item_id);
";

/// One answer as the page sends it (already validated by [`NewAnswer::validate`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NewAnswer {
    /// Rater name as typed.
    pub rater: String,
    /// Item id (content hash).
    pub item: String,
    /// One of [`ANSWERS`].
    pub answer: String,
    /// Free-text tags, comma-separated.
    pub tags: String,
    /// Where the rater clicked, in the input image's pixel coordinates.
    pub click: Option<(f64, f64)>,
    /// Time from showing the item to answering, as the page measured it.
    pub duration_ms: Option<i64>,
}

/// Longest rater name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest tag text, in characters.
pub const MAX_TAGS_CHARS: usize = 500;

/// Checks a rater name: 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub fn validate_name(name: &str) -> Result<(), ReviewError> {
    let chars = name.trim().chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(ReviewError::Invalid(format!(
            "a rater name has 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ReviewError::Invalid(
            "a rater name has no control characters".into(),
        ));
    }
    Ok(())
}

impl NewAnswer {
    /// Checks the answer against the rules of the table (the database checks again).
    pub fn validate(&self) -> Result<(), ReviewError> {
        validate_name(&self.rater)?;
        if !ANSWERS.contains(&self.answer.as_str()) {
            return Err(ReviewError::Invalid(format!(
                "answer must be one of {}",
                ANSWERS.join(", ")
            )));
        }
        if self.tags.chars().count() > MAX_TAGS_CHARS || self.tags.chars().any(char::is_control) {
            return Err(ReviewError::Invalid(format!(
                "tags are at most {MAX_TAGS_CHARS} characters without control characters"
            )));
        }
        if let Some((x, y)) = self.click
            && !(x.is_finite() && y.is_finite())
        {
            return Err(ReviewError::Invalid(
                "click coordinates must be finite".into(),
            ));
        }
        if self.duration_ms.is_some_and(|d| d < 0) {
            return Err(ReviewError::Invalid("duration must not be negative".into()));
        }
        Ok(())
    }
}

/// One stored answer with its rater's name and its item's description (export and summary).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnswerRow {
    /// Row id (order of arrival).
    pub answer_id: i64,
    /// Rater name.
    pub rater: String,
    /// Item id.
    pub item: String,
    /// Weights file the item's run explained.
    pub model: String,
    /// Method name.
    pub method: String,
    /// Class explained.
    pub class: String,
    /// Its predicted probability.
    pub prob: Option<f64>,
    /// Input file as the explain run recorded it.
    pub input: String,
    /// `correct`, `partly`, `wrong` or `unsure`.
    pub answer: String,
    /// Free-text tags as typed.
    pub tags: String,
    /// Click, x (input pixels).
    pub click_x: Option<f64>,
    /// Click, y (input pixels).
    pub click_y: Option<f64>,
    /// When the answer was stored (UTC, ISO 8601).
    pub answered_at: String,
    /// Time the rater took, as the page measured it.
    pub duration_ms: Option<i64>,
}

/// An open review database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path` for serving: creates the tables,
    /// switches to WAL mode.
    pub fn open(path: &Path) -> Result<Store, ReviewError> {
        let conn = Connection::open(path).map_err(|e| ReviewError::file(path, e))?;
        let store = Store::configure(conn, path)?;
        store
            .conn
            .execute_batch(SCHEMA)
            .map_err(|e| store.error(e))?;
        store.check_version(true)?;
        Ok(store)
    }

    /// Opens an existing database read-only (export, summary).
    pub fn open_existing(path: &Path) -> Result<Store, ReviewError> {
        if !path.is_file() {
            return Err(ReviewError::file(path, "no such database file"));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| ReviewError::file(path, e))?;
        let store = Store::configure(conn, path)?;
        store.check_version(false)?;
        Ok(store)
    }

    fn configure(conn: Connection, path: &Path) -> Result<Store, ReviewError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| ReviewError::file(path, e))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        // Reading the schema first turns "not a database" into an error here, not later.
        store
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| store.error(e))?;
        Ok(store)
    }

    /// Refuses a database of another layout; stamps a new one (`create`) with ours.
    fn check_version(&self, create: bool) -> Result<(), ReviewError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.error(e))?;
        match version {
            STORE_VERSION => Ok(()),
            0 if create => {
                self.conn
                    .pragma_update(None, "journal_mode", "WAL")
                    .map_err(|e| self.error(e))?;
                self.conn
                    .pragma_update(None, "user_version", STORE_VERSION)
                    .map_err(|e| self.error(e))
            }
            0 => Err(ReviewError::file(&self.path, "not a review database")),
            other => Err(ReviewError::file(
                &self.path,
                format!("review database layout {other}; this build reads {STORE_VERSION}"),
            )),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> ReviewError {
        ReviewError::file(&self.path, e)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's journal mode (`wal` once opened for serving).
    pub fn journal_mode(&self) -> Result<String, ReviewError> {
        self.conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| self.error(e))
    }

    /// Records the items a server offers (an item seen before keeps its row).
    pub fn add_items(&mut self, items: &[ItemInfo]) -> Result<(), ReviewError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| ReviewError::file(&self.path, e))?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR IGNORE INTO items
                     (id, model, arch, method, class, class_index, prob, input, source)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(|e| ReviewError::file(&self.path, e))?;
            for item in items {
                insert
                    .execute(params![
                        item.id,
                        item.model,
                        item.arch,
                        item.method,
                        item.class,
                        item.class_index as i64,
                        item.prob.filter(|p| p.is_finite()),
                        item.input,
                        item.source,
                    ])
                    .map_err(|e| ReviewError::file(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| ReviewError::file(&self.path, e))
    }

    /// Stores one answer (and its rater, the first time) in one transaction; returns its row id.
    pub fn add_answer(&mut self, answer: &NewAnswer) -> Result<i64, ReviewError> {
        answer.validate()?;
        let path = self.path.clone();
        let err = |e: rusqlite::Error| ReviewError::file(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let known: Option<String> = tx
            .query_row("SELECT id FROM items WHERE id = ?1", [&answer.item], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        if known.is_none() {
            return Err(ReviewError::Invalid(format!("no item {}", answer.item)));
        }
        tx.execute(
            "INSERT OR IGNORE INTO raters (name) VALUES (?1)",
            [answer.rater.trim()],
        )
        .map_err(err)?;
        let rater: i64 = tx
            .query_row(
                "SELECT id FROM raters WHERE name = ?1",
                [answer.rater.trim()],
                |r| r.get(0),
            )
            .map_err(err)?;
        tx.execute(
            "INSERT INTO answers (rater_id, item_id, answer, tags, click_x, click_y, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                rater,
                answer.item,
                answer.answer,
                answer.tags.trim(),
                answer.click.map(|c| c.0),
                answer.click.map(|c| c.1),
                answer.duration_ms,
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(id)
    }

    /// The items `rater` has answered.
    pub fn answered_by(&self, rater: &str) -> Result<HashSet<String>, ReviewError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT DISTINCT a.item_id FROM answers a JOIN raters r ON r.id = a.rater_id
                 WHERE r.name = ?1",
            )
            .map_err(|e| self.error(e))?;
        let rows = query
            .query_map([rater.trim()], |r| r.get::<_, String>(0))
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// The latest answer of `rater`: `(answer, tags)`.
    pub fn last_answer(&self, rater: &str) -> Result<Option<(String, String)>, ReviewError> {
        self.conn
            .query_row(
                "SELECT a.answer, a.tags FROM answers a JOIN raters r ON r.id = a.rater_id
                 WHERE r.name = ?1 ORDER BY a.id DESC LIMIT 1",
                [rater.trim()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.error(e))
    }

    /// Every answer in order of arrival, with rater and item described.
    pub fn answers(&self) -> Result<Vec<AnswerRow>, ReviewError> {
        let mut query = self
            .conn
            .prepare(
                "SELECT a.id, r.name, a.item_id, i.model, i.method, i.class, i.prob, i.input,
                        a.answer, a.tags, a.click_x, a.click_y, a.answered_at, a.duration_ms
                 FROM answers a JOIN raters r ON r.id = a.rater_id JOIN items i ON i.id = a.item_id
                 ORDER BY a.id",
            )
            .map_err(|e| self.error(e))?;
        let rows = query
            .query_map([], |r| {
                Ok(AnswerRow {
                    answer_id: r.get(0)?,
                    rater: r.get(1)?,
                    item: r.get(2)?,
                    model: r.get(3)?,
                    method: r.get(4)?,
                    class: r.get(5)?,
                    prob: r.get(6)?,
                    input: r.get(7)?,
                    answer: r.get(8)?,
                    tags: r.get(9)?,
                    click_x: r.get(10)?,
                    click_y: r.get(11)?,
                    answered_at: r.get(12)?,
                    duration_ms: r.get(13)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }
}

/// Columns of the export, in order.
const EXPORT_COLUMNS: [&str; 14] = [
    "answer_id",
    "rater",
    "item",
    "model",
    "method",
    "class",
    "prob",
    "input",
    "answer",
    "tags",
    "click_x",
    "click_y",
    "answered_at",
    "duration_ms",
];

/// `relevance review export`: every answer of `db` to `out`, as CSV (`.csv`) or a JSON array
/// (`.json`), written atomically.
pub fn export(db: &Path, out: &Path) -> Result<usize, ReviewError> {
    let rows = Store::open_existing(db)?.answers()?;
    let text = match out.extension().and_then(|e| e.to_str()) {
        Some("csv") => export_csv(&rows),
        Some("json") => {
            serde_json::to_string_pretty(&rows).map_err(|e| ReviewError::file(out, e))?
        }
        _ => {
            return Err(ReviewError::file(
                out,
                "the export is written as .csv or .json",
            ));
        }
    };
    crate::io::write_text_atomic(out, &text).map_err(|e| ReviewError::file(out, e))?;
    Ok(rows.len())
}

fn export_csv(rows: &[AnswerRow]) -> String {
    let mut text = EXPORT_COLUMNS.join(",");
    text.push('\n');
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let cells = [
            r.answer_id.to_string(),
            csv_cell(&r.rater),
            r.item.clone(),
            csv_cell(&r.model),
            csv_cell(&r.method),
            csv_cell(&r.class),
            opt(r.prob),
            csv_cell(&r.input),
            r.answer.clone(),
            csv_cell(&r.tags),
            opt(r.click_x),
            opt(r.click_y),
            r.answered_at.clone(),
            r.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        ];
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break.
pub fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
