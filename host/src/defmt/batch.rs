//! A `telemetry/log-batch` payload with its defmt records decoded: every other record, the
//! gap and the sequence numbers stay as they came, so deduplication and acks are unchanged.

use sentelite_core::codec::EncodeError;
use sentelite_core::log::{Level, Record, decode_batch, encode_batch};

use super::decode::FrameError;
use super::firmware::Firmware;

/// The namespace of records that carry a defmt frame (the embassy adapter's
/// `DEFMT_NAMESPACE`, PROTOCOL.md section 13.3).
pub const DEFMT_NAMESPACE: &str = "defmt";

/// Why a defmt record was stored undecoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undecoded {
    /// The client's Hello named no build id.
    #[error("the client announced no build id")]
    NoBuildId,
    /// No ELF is registered for the announced build id.
    #[error("no ELF registered for build id {0:?}")]
    NoElf(String),
    /// The ELF is registered but the frame does not decode with it.
    #[error("{error} (build id {build_id:?})")]
    Frame {
        /// The announced build id.
        build_id: String,
        /// What went wrong.
        error: FrameError,
    },
}

/// What rewriting one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Frames turned into records.
    pub decoded: u64,
    /// Frames kept undecoded because there was nothing to decode them with.
    pub unmatched: u64,
    /// Frames kept undecoded because they did not decode.
    pub errors: u64,
}

/// The text of an undecoded record: the reason, so a reader of the store sees why.
pub fn undecoded_message(why: &Undecoded) -> String {
    format!("undecoded defmt frame: {why}")
}

/// A record's fields, owned where decoding made new ones.
struct Owned<'a> {
    record: Record<'a>,
    namespace: Option<String>,
    message: Option<String>,
    data: Option<Vec<u8>>,
}

impl<'a> Owned<'a> {
    fn as_record(&self) -> Record<'_> {
        Record {
            namespace: self.namespace.as_deref().unwrap_or(self.record.namespace),
            message: self.message.as_deref().unwrap_or(self.record.message),
            data: self.data.as_deref().unwrap_or(self.record.data),
            ..self.record
        }
    }
}

/// Does `record` carry a defmt frame (PROTOCOL.md 13.3)?
pub fn is_defmt_frame(record: &Record<'_>) -> bool {
    record.namespace == DEFMT_NAMESPACE && record.message.is_empty() && !record.data.is_empty()
}

/// Rewrites a checked batch `payload`: each defmt record is decoded with `firmware`
/// (`Ok`), or, when it does not decode or there is nothing to decode it with (`Err`), kept
/// with the reason as its message. `None` when the batch holds no defmt record (or does not
/// decode, which a checked payload always does): then it is stored as it came.
pub fn rewrite(
    payload: &[u8],
    firmware: Result<&Firmware, &Undecoded>,
) -> Option<(Vec<u8>, Outcome)> {
    // Most batches hold no defmt record: a byte search (a namespace `defmt` is in the
    // batch as those five bytes, in the string table or inline) spares them a second decode.
    if !payload
        .windows(DEFMT_NAMESPACE.len())
        .any(|w| w == DEFMT_NAMESPACE.as_bytes())
    {
        return None;
    }
    let batch = decode_batch(payload).ok()?;
    let records: Vec<Record<'_>> = batch.records().collect::<Result<_, _>>().ok()?;
    if !records.iter().any(is_defmt_frame) {
        return None;
    }
    let mut outcome = Outcome::default();
    let owned: Vec<Owned<'_>> = records
        .into_iter()
        .map(|record| {
            let mut owned = Owned {
                record,
                namespace: None,
                message: None,
                data: None,
            };
            if !is_defmt_frame(&record) {
                return owned;
            }
            let why = match firmware {
                Ok(firmware) => match firmware.decode(record.data) {
                    Ok(frame) => {
                        outcome.decoded += 1;
                        owned.record.level = frame.level;
                        owned.namespace = frame.module.clone();
                        owned.data = Some(frame_data(&frame));
                        owned.message = Some(frame.message);
                        return owned;
                    }
                    Err(error) => {
                        outcome.errors += 1;
                        Undecoded::Frame {
                            build_id: firmware.build_id().to_owned(),
                            error,
                        }
                    }
                },
                Err(why) => {
                    outcome.unmatched += 1;
                    why.clone()
                }
            };
            owned.record.level = Level::Info;
            owned.message = Some(undecoded_message(&why));
            owned
        })
        .collect();
    let mut buf = vec![0; payload.len() * 2 + 256];
    let encode =
        |buf: &mut [u8]| encode_batch(batch.gap.as_ref(), owned.iter().map(Owned::as_record), buf);
    let len = match encode(&mut buf) {
        Ok(len) => len,
        Err(EncodeError::BufferTooSmall { required }) => {
            buf.resize(required, 0);
            encode(&mut buf).ok()?
        }
        Err(_) => return None,
    };
    buf.truncate(len);
    Some((buf, outcome))
}

/// The structured data of a decoded record: where the statement is and the firmware's own
/// timestamp, as a CBOR map (the Value profile); empty when there is neither.
fn frame_data(frame: &super::decode::DecodedFrame) -> Vec<u8> {
    let mut map = serde_json::Map::new();
    if let Some(file) = &frame.file {
        map.insert("file".into(), file.clone().into());
    }
    if let Some(line) = frame.line {
        map.insert("line".into(), line.into());
    }
    if let Some(timestamp) = &frame.timestamp {
        map.insert("defmt-timestamp".into(), timestamp.clone().into());
    }
    if map.is_empty() {
        return Vec::new();
    }
    crate::translate::json_to_cbor(&serde_json::Value::Object(map))
}

#[cfg(test)]
mod tests {
    use sentelite_core::log::Gap;

    use super::*;

    fn record<'a>(seq: u32, namespace: &'a str, message: &'a str, data: &'a [u8]) -> Record<'a> {
        Record {
            seq,
            time_ms: 100 + u64::from(seq),
            level: Level::Warn,
            namespace,
            id: None,
            message,
            data,
        }
    }

    fn encode(gap: Option<&Gap>, records: &[Record<'_>]) -> Vec<u8> {
        let mut buf = vec![0; 1024];
        let len = encode_batch(gap, records.iter().copied(), &mut buf).unwrap();
        buf.truncate(len);
        buf
    }

    #[test]
    fn only_defmt_records_change_and_the_gap_and_sequence_numbers_stay() {
        let gap = Gap::of(3, Level::Debug, 90);
        let sent = [
            record(1, "app", "before", &[]),
            record(4, DEFMT_NAMESPACE, "", &[1, 2, 0]),
            record(9, "app", "after", &[0xa0]),
        ];
        let payload = encode(Some(&gap), &sent);
        let why = Undecoded::NoElf("b1".into());
        let (rewritten, outcome) = rewrite(&payload, Err(&why)).expect("rewritten");
        assert_eq!(
            outcome,
            Outcome {
                unmatched: 1,
                ..Outcome::default()
            }
        );
        let batch = decode_batch(&rewritten).unwrap();
        assert_eq!(batch.gap, Some(gap));
        let got: Vec<Record<'_>> = batch.records().map(Result::unwrap).collect();
        let message = undecoded_message(&why);
        let expected = [
            sent[0],
            Record {
                level: Level::Info,
                message: &message,
                ..sent[1]
            },
            sent[2],
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn a_batch_without_defmt_records_is_left_alone() {
        let payload = encode(
            None,
            &[
                record(0, "app", "x", &[]),
                record(1, DEFMT_NAMESPACE, "said", &[]),
            ],
        );
        assert_eq!(rewrite(&payload, Err(&Undecoded::NoBuildId)), None);
        assert_eq!(rewrite(&[9, 9], Err(&Undecoded::NoBuildId)), None);
    }
}
