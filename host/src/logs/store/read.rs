//! Reading the store: SQL picks the batch rows a query can match by their index columns
//! (client, arrival time, levels present), newest first; their records are decoded and
//! filtered here by level, event id and text.

use rusqlite::types::Value;
use sentelite_core::log::{Level, LevelSet, Record, decode_batch};

use super::{LogStore, StoreError};
use crate::logs::entry::{EntryRef, LogEntry, Origin};
use crate::logs::query::LogQuery;

/// A row as a query reads it: client, boot, uid, has sequence numbers, arrival, body.
type RowColumns = (String, u32, String, bool, i64, Vec<u8>);

/// The filters a row's index columns cannot answer, applied per record.
struct RecordFilter<'q> {
    min_level: Option<Level>,
    id: Option<&'q str>,
    grep: Option<&'q str>,
}

impl RecordFilter<'_> {
    fn matches(&self, r: &Record<'_>) -> bool {
        self.min_level.is_none_or(|min| r.level >= min)
            && self.id.is_none_or(|id| r.id == Some(id))
            && self.grep.is_none_or(|g| r.message.contains(g))
    }

    /// True when every record of a row with `levels` passes, so it need not be decoded.
    fn passes_whole_row(&self, levels: u8) -> bool {
        self.id.is_none()
            && self.grep.is_none()
            && self
                .min_level
                .is_none_or(|min| levels & !LevelSet::at_least(min).bits() == 0)
    }
}

/// The rows `query` can match: a WHERE clause on index columns and its arguments.
fn row_filter(query: &LogQuery, min_level: Option<Level>) -> (String, Vec<Value>) {
    let mut parts = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(level) = min_level {
        args.push(Value::Integer(i64::from(LevelSet::at_least(level).bits())));
        parts.push(format!("(levels & ?{}) != 0", args.len()));
    }
    if let Some(client) = &query.client {
        args.push(Value::Text(client.clone()));
        parts.push(format!("client_id = ?{}", args.len()));
    }
    if let Some(since) = query.since_ms {
        args.push(Value::Integer(since as i64));
        parts.push(format!("received_ms >= ?{}", args.len()));
    }
    if let Some(until) = query.until_ms {
        args.push(Value::Integer(until as i64));
        parts.push(format!("received_ms < ?{}", args.len()));
    }
    let clause = if parts.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", parts.join(" AND "))
    };
    (clause, args)
}

impl LogStore {
    /// The newest records matching `query`, oldest first.
    pub fn query(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let min_level = query.min_level()?;
        let filter = RecordFilter {
            min_level,
            id: query.id.as_deref(),
            grep: query.grep.as_deref(),
        };
        let limit = query.effective_limit();
        let (clause, args) = row_filter(query, min_level);
        let sql = format!(
            "SELECT client_id, boot_id, uid, first_seq IS NOT NULL, received_ms, body \
             FROM batches {clause} ORDER BY row DESC"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(|e| self.err(e))?;
        // Newest first while reading; turned around at the end.
        let mut newest_first = Vec::new();
        while newest_first.len() < limit
            && let Some(row) = rows.next().map_err(|e| self.err(e))?
        {
            let columns = || -> Result<RowColumns, rusqlite::Error> {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            };
            let (client_id, boot_id, uid, with_seq, received_ms, body) =
                columns().map_err(|e| self.err(e))?;
            let received_ms = received_ms.max(0) as u64;
            let origin = Origin {
                client_id: &client_id,
                boot_id,
                uid: &uid,
                received_ms,
            };
            let batch = decode_batch(&body)?;
            let mut matching = Vec::new();
            for r in batch.records() {
                let r = r?;
                if filter.matches(&r) {
                    matching.push(LogEntry::from_record(&EntryRef::of(&origin, &r, with_seq)));
                }
            }
            newest_first.extend(matching.into_iter().rev());
        }
        newest_first.truncate(limit);
        newest_first.reverse();
        Ok(newest_first)
    }

    /// How many records match `query` (its limit ignored). Rows whose every record matches
    /// are counted from their index columns without decoding.
    pub fn count(&self, query: &LogQuery) -> Result<u64, StoreError> {
        let min_level = query.min_level()?;
        let filter = RecordFilter {
            min_level,
            id: query.id.as_deref(),
            grep: query.grep.as_deref(),
        };
        let (clause, args) = row_filter(query, min_level);
        if filter.passes_whole_row(0) && min_level.is_none() {
            let sql = format!("SELECT coalesce(sum(count), 0) FROM batches {clause}");
            return self
                .conn
                .query_row(&sql, rusqlite::params_from_iter(args.iter()), |row| {
                    row.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(|e| self.err(e));
        }
        let sql = format!("SELECT levels, count, body FROM batches {clause}");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(|e| self.err(e))?;
        let mut total = 0u64;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let levels: u8 = row.get(0).map_err(|e| self.err(e))?;
            if filter.passes_whole_row(levels) {
                total += row.get::<_, u64>(1).map_err(|e| self.err(e))?;
                continue;
            }
            let body = row
                .get_ref(2)
                .and_then(|v| v.as_blob().map_err(rusqlite::Error::from))
                .map_err(|e| self.err(e))?;
            for r in decode_batch(body)?.records() {
                if filter.matches(&r?) {
                    total += 1;
                }
            }
        }
        Ok(total)
    }
}
