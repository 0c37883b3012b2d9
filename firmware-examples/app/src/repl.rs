//! The device's nREPL evaluator: a few forms a person at an editor can send to a board (or
//! the virtual device) through the host's nREPL endpoint. It is not Clojure; it reads one
//! form, `(name arg …)` or `name arg …`, and answers with a printed value.
//!
//! | form | value |
//! |---|---|
//! | `(help)` | the forms and the registered commands |
//! | `(log-level)` | the lowest level shipped, e.g. `:info` |
//! | `(log-level :debug)` | sets it (`trace` … `fatal`, with or without the colon) |
//! | `(uptime)` | milliseconds since boot |
//! | `(counters)` | `{:ticks N :updates N :dropped N}` |
//! | `(led :on)` / `(led :off)` | switches the board's LED |
//! | `(blink N)` | blinks the LED N times (1 to 20), after the answer |
//! | `(commands)` | the registered commands' names |
//! | `(NAME arg …)` or `(call NAME arg …)` | runs a registered [`Command`] with the arguments |
//!
//! Anything else is answered with an `ex` (`unknown-form`) and the evaluation ends with
//! status `eval-error`; the connection and the device carry on.

use core::fmt::Write as _;

use heapless::String;
use sentelite_core::log::{Level, LevelSet, LogControl};
use sentelite_core::nrepl::{Evaluator, Ops, Reply, ReplyError};
use sentelite_embassy::logging::LOGGER;

/// A command the application registers for the REPL: `run` gets the arguments after the
/// name (as typed) and writes its printed value.
#[derive(Clone, Copy)]
pub struct Command {
    /// What the editor types.
    pub name: &'static str,
    /// One line for `(help)`.
    pub help: &'static str,
    /// Runs it; `Err` is reported as an `ex` with this text.
    pub run: fn(args: &str, out: &mut dyn core::fmt::Write) -> Result<(), &'static str>,
}

impl core::fmt::Debug for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Command").field("name", &self.name).finish()
    }
}

/// The commands every example device has: `add` sums integers, `echo` repeats its
/// arguments.
pub const EXAMPLE_COMMANDS: &[Command] = &[
    Command {
        name: "add",
        help: "(add 1 2 3) sums integers",
        run: |args, out| {
            let mut sum: i64 = 0;
            for word in args.split_whitespace() {
                let n: i64 = word.parse().map_err(|_| "add takes integers")?;
                sum = sum.checked_add(n).ok_or("overflow")?;
            }
            write!(out, "{sum}").map_err(|_| "value too long")
        },
    },
    Command {
        name: "echo",
        help: "(echo words …) repeats them as a string",
        run: |args, out| write!(out, "{:?}", args.trim()).map_err(|_| "value too long"),
    },
];

/// What the evaluator reads and changes on the device.
pub struct DeviceState<'a> {
    /// Ticks logged since boot.
    pub ticks: u32,
    /// Firmware updates staged since boot.
    pub updates: u32,
    /// Events the adapter dropped.
    pub dropped: u32,
    /// LED switch asked for by the last form (`Some(on)`), done by the application.
    pub led: Option<bool>,
    /// Blinks asked for by the last form, done by the application after the answer.
    pub blinks: u8,
    /// Registered commands.
    pub commands: &'a [Command],
}

/// The namespace values are reported in.
const NS: &str = "device";

/// Longest printed value.
type Printed = String<192>;

impl Evaluator for DeviceState<'_> {
    fn supports(&self) -> Ops {
        Ops {
            load_file: true,
            completions: true,
            ..Ops::default()
        }
    }

    fn version(&self) -> (&str, &str) {
        ("sentelite-device", env!("CARGO_PKG_VERSION"))
    }

    fn eval(
        &mut self,
        _session: &str,
        code: &str,
        _ns: Option<&str>,
        reply: &mut Reply<'_>,
    ) -> Result<(), ReplyError> {
        let form = code.trim();
        let form = form
            .strip_prefix('(')
            .and_then(|f| f.strip_suffix(')'))
            .unwrap_or(form)
            .trim();
        let (head, args) = form.split_once(char::is_whitespace).unwrap_or((form, ""));
        let mut value = Printed::new();
        match self.evaluate(head, args.trim(), &mut value) {
            Ok(()) => reply.value(&value, NS),
            Err(why) => {
                let mut message: String<128> = String::new();
                let _ = writeln!(message, "{why}: {}", form);
                reply.ex("unknown-form", &message)
            }
        }
    }

    fn completions(
        &mut self,
        prefix: &str,
        _ns: Option<&str>,
        reply: &mut Reply<'_>,
    ) -> Result<(), ReplyError> {
        let mut found: heapless::Vec<sentelite_core::nrepl::Completion<'_>, 16> =
            heapless::Vec::new();
        let builtins = FORMS.iter().copied();
        let commands = self.commands.iter().map(|c| c.name);
        for name in builtins.chain(commands) {
            if name.starts_with(prefix.trim_start_matches('(')) {
                let _ = found.push(sentelite_core::nrepl::Completion {
                    candidate: name,
                    kind: "function",
                });
            }
        }
        reply.completions(&found)
    }
}

/// The built-in forms, for `(help)` and completions.
const FORMS: [&str; 8] = [
    "help",
    "log-level",
    "uptime",
    "counters",
    "led",
    "blink",
    "commands",
    "call",
];

impl DeviceState<'_> {
    fn evaluate(&mut self, head: &str, args: &str, out: &mut Printed) -> Result<(), &'static str> {
        let full = "value too long";
        match head {
            "help" => {
                write!(out, "{:?}", FORMS).map_err(|_| full)?;
            }
            "log-level" if args.is_empty() => {
                let levels = LOGGER
                    .with(|s| s.config().filter.levels)
                    .ok_or("logging not installed")?;
                let lowest = Level::ALL.iter().find(|l| levels.contains(**l));
                write!(out, ":{}", lowest.map_or("off", |l| l.name())).map_err(|_| full)?;
            }
            "log-level" => {
                let level =
                    Level::from_name(args.trim_start_matches(':')).ok_or("no such level")?;
                LOGGER
                    .with(|s| {
                        let mut filter = s.config().filter;
                        filter.levels = LevelSet::at_least(level);
                        s.apply(LogControl::SetFilter(filter));
                    })
                    .ok_or("logging not installed")?;
                log::warn!("log level set to {} from the REPL", level.name());
                write!(out, ":{}", level.name()).map_err(|_| full)?;
            }
            "uptime" => {
                write!(out, "{}", embassy_time::Instant::now().as_millis()).map_err(|_| full)?;
            }
            "counters" => {
                write!(
                    out,
                    "{{:ticks {} :updates {} :dropped {}}}",
                    self.ticks, self.updates, self.dropped
                )
                .map_err(|_| full)?;
            }
            "led" => {
                let on = match args.trim_start_matches(':') {
                    "on" | "true" => true,
                    "off" | "false" => false,
                    _ => return Err("led takes :on or :off"),
                };
                self.led = Some(on);
                write!(out, ":{}", if on { "on" } else { "off" }).map_err(|_| full)?;
            }
            "blink" => {
                let n: u8 = args.parse().map_err(|_| "blink takes a count")?;
                if !(1..=20).contains(&n) {
                    return Err("blink takes 1 to 20");
                }
                self.blinks = n;
                write!(out, "{n}").map_err(|_| full)?;
            }
            "commands" => {
                out.push('[').map_err(|_| full)?;
                for (i, c) in self.commands.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(out, "{sep}{:?}", c.name).map_err(|_| full)?;
                }
                out.push(']').map_err(|_| full)?;
            }
            "call" => {
                let (name, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
                return self.run_command(name.trim_matches('"'), rest, out);
            }
            name => return self.run_command(name, args, out),
        }
        Ok(())
    }

    fn run_command(&self, name: &str, args: &str, out: &mut Printed) -> Result<(), &'static str> {
        let command = self
            .commands
            .iter()
            .find(|c| c.name == name)
            .ok_or("unknown form or command")?;
        (command.run)(args.trim(), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> DeviceState<'static> {
        DeviceState {
            ticks: 7,
            updates: 1,
            dropped: 0,
            led: None,
            blinks: 0,
            commands: EXAMPLE_COMMANDS,
        }
    }

    fn eval(s: &mut DeviceState<'_>, form: &str) -> Result<Printed, &'static str> {
        let form = form.trim_start_matches('(').trim_end_matches(')');
        let (head, args) = form.split_once(' ').unwrap_or((form, ""));
        let mut out = Printed::new();
        s.evaluate(head, args, &mut out).map(|()| out)
    }

    #[test]
    fn forms_read_and_change_the_device() {
        let mut s = state();
        assert_eq!(
            eval(&mut s, "(counters)").unwrap(),
            "{:ticks 7 :updates 1 :dropped 0}"
        );
        assert_eq!(eval(&mut s, "(add 1 2 39)").unwrap(), "42");
        assert_eq!(
            eval(&mut s, "(call echo hi there)").unwrap(),
            "\"hi there\""
        );
        assert_eq!(eval(&mut s, "(commands)").unwrap(), "[\"add\" \"echo\"]");
        assert_eq!(eval(&mut s, "(led :on)").unwrap(), ":on");
        assert_eq!(s.led, Some(true));
        assert_eq!(eval(&mut s, "(blink 3)").unwrap(), "3");
        assert_eq!(s.blinks, 3);
        assert!(eval(&mut s, "(blink 99)").is_err());
        assert!(eval(&mut s, "(add x)").is_err());
        assert!(eval(&mut s, "(launch-rockets)").is_err());
    }
}
