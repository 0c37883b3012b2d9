//! `tracing` events as remote log records (feature `tracing`): a
//! [`tracing_subscriber::Layer`] that hands each event to [`Client::log`], so a host program
//! instrumented with `tracing` ships its logs through the same queue, acks and gap accounting
//! as records logged directly.
//!
//! | event | record |
//! |---|---|
//! | level `TRACE` … `ERROR` | trace, debug, info, warn, error; a `sentelite.level` field (`"fatal"`, `"report"`, or any level name) overrides it |
//! | target | namespace |
//! | `sentelite.id` field | event id (`my.app/started`) |
//! | `message` | message |
//! | other fields, and the fields of every span the event is in (outermost first; the event's own win on a name clash) | data: a CBOR map with keyword keys; numbers and booleans as themselves, everything else as text |
//!
//! Events are never logged from the client's own sending path: the driver task and this
//! layer mark the thread while they run (see [`crate::logs`]), and events raised meanwhile
//! (by the WebSocket or TLS stack, say) are left to the other layers. Without that, every
//! batch sent could log records that make the next batch, for ever.
//!
//! ```no_run
//! # fn demo(client: &sentelite_driver::Client) {
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! tracing_subscriber::registry()
//!     .with(sentelite_driver::tracing_layer::LogLayer::new(client))
//!     .init();
//! let span = tracing::info_span!("pump", pump_id = 3);
//! let _in = span.enter();
//! tracing::warn!(pressure = 7.5, "pressure high"); // data {:pump_id 3 :pressure 7.5}
//! # }
//! ```

use std::fmt;

use minicbor::encode::{Error as CborError, write::EndOfSlice};
use sentelite_core::value::{encoder, finish, keyword};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::client::WeakClient;
use crate::logs::{Silence, silenced};
use crate::{Client, Level};

/// Field that overrides an event's level (so `tracing` can log `fatal` and `report`).
pub const LEVEL_FIELD: &str = "sentelite.level";
/// Field that gives an event's id (`my.app/started`).
pub const ID_FIELD: &str = "sentelite.id";

/// Logs `tracing` events through a [`Client`]. It holds the client weakly: the client still
/// closes when the application drops its last handle, and the layer then logs nothing.
#[derive(Debug, Clone)]
pub struct LogLayer {
    client: WeakClient,
}

impl LogLayer {
    /// A layer logging through `client` (which needs [`crate::ClientOptions::log`] set;
    /// without it the layer logs nothing).
    pub fn new(client: &Client) -> Self {
        Self {
            client: client.downgrade(),
        }
    }
}

/// The level a `tracing` level becomes.
pub fn level_of(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::TRACE => Level::Trace,
        tracing::Level::DEBUG => Level::Debug,
        tracing::Level::INFO => Level::Info,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::ERROR => Level::Error,
    }
}

type EncodeError = CborError<EndOfSlice>;

/// One field value, kept until the record is built.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Text(String),
}

/// Fields of a span (kept in its extensions) or of an event.
#[derive(Debug, Default, Clone)]
struct Fields {
    values: Vec<(&'static str, Value)>,
    message: Option<String>,
    level: Option<Level>,
    id: Option<String>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        match (name, value) {
            ("message", Value::Text(text)) => self.message = Some(text),
            (LEVEL_FIELD, Value::Text(text)) => self.level = Level::from_name(&text),
            (ID_FIELD, Value::Text(text)) => self.id = Some(text),
            (_, value) => match self.values.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => self.values.push((name, value)),
            },
        }
    }
}

impl Visit for Fields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::F64(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::Text(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::Text(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::Text(format!("{value:?}")));
    }
}

/// The fields as a CBOR map with keyword keys (empty when there are none). The buffer is
/// sized from the fields, so encoding cannot run out of room.
fn encode_data(values: &[(&'static str, Value)]) -> Vec<u8> {
    if values.is_empty() {
        return Vec::new();
    }
    let room: usize = values
        .iter()
        .map(|(name, value)| {
            let value = match value {
                Value::Text(t) => t.len(),
                _ => 0,
            };
            name.len() + value + 24
        })
        .sum();
    let mut buf = vec![0u8; room + 16];
    let written = (|| {
        let mut e = encoder(&mut buf);
        e.map(values.len() as u64)?;
        for (name, value) in values {
            keyword(&mut e, name)?;
            match value {
                Value::Bool(b) => e.bool(*b)?,
                Value::I64(n) => e.i64(*n)?,
                Value::U64(n) => e.u64(*n)?,
                Value::F64(x) => e.f64(*x)?,
                Value::Text(t) => e.str(t)?,
            };
        }
        Ok::<_, EncodeError>(finish(e))
    })();
    match written {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(_) => Vec::new(),
    }
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<Fields>() {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if silenced() {
            return;
        }
        let _silence = Silence::begin();
        let Some(client) = self.client.upgrade() else {
            return;
        };
        let mut own = Fields::default();
        event.record(&mut own);
        let level = own
            .level
            .unwrap_or_else(|| level_of(event.metadata().level()));
        if !client.log_enabled(level) {
            return;
        }
        let mut all = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (name, value) in &fields.values {
                        match all.values.iter_mut().find(|(n, _)| n == name) {
                            Some(slot) => slot.1 = value.clone(),
                            None => all.values.push((name, value.clone())),
                        }
                    }
                }
            }
        }
        for (name, value) in own.values {
            match all.values.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => all.values.push((name, value)),
            }
        }
        let data = encode_data(&all.values);
        client.log(
            level,
            event.metadata().target(),
            own.id.as_deref(),
            own.message.as_deref().unwrap_or(""),
            &data,
        );
    }
}
