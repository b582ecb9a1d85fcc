//! Feedback on stderr: notes, the spinner shown while a model loads, and the library's
//! `tracing` events. Warnings (a loading report, an ignored fill-mask target) print as
//! `warning:` lines; with `-v`/`-vv` or `RUST_LOG`, the library's info and debug events
//! (files resolved, class picked, dtype, timings) print as `tracing-subscriber` lines.
//! Everything goes above the spinner, and everything here is silent with `--quiet`; the
//! spinner and download bars also need a terminal.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::Uptime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

static QUIET: AtomicBool = AtomicBool::new(false);
/// While set, library warnings are dropped (`inspect` prints the loading report itself).
static MUTED: AtomicBool = AtomicBool::new(false);
/// The spinner on screen, so that notes and warnings print above it instead of through it.
static SPINNER: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Set `--quiet` and route the library's `tracing` events to stderr, filtered by
/// [`filter_directives`]. With `--quiet` no subscriber is installed at all: nothing is logged.
pub fn init(quiet: bool, verbose: u8) {
    QUIET.store(quiet, Ordering::Relaxed);
    if quiet {
        return;
    }
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = EnvFilter::builder().parse_lossy(filter_directives(rust_log.as_deref(), verbose));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(AboveSpinner)
        .event_format(CliFormat::default())
        .finish();
    // Fails only when a subscriber is already set, which keeps that one.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The `EnvFilter` directives: `RUST_LOG` when set and not empty wins; otherwise warnings
/// from everything, plus info (`-v`), debug (`-vv`) or trace (`-vvv`) from the autocandle
/// crates (a directive's target matches as a prefix: `autocandle` covers `autocandle_core`,
/// `autocandle_bert`, ...).
pub fn filter_directives(rust_log: Option<&str>, verbose: u8) -> String {
    if let Some(directives) = rust_log.filter(|s| !s.trim().is_empty()) {
        return directives.to_owned();
    }
    match verbose {
        0 => "warn".to_owned(),
        1 => "warn,autocandle=info".to_owned(),
        2 => "warn,autocandle=debug".to_owned(),
        _ => "warn,autocandle=trace".to_owned(),
    }
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Whether progress (spinner, download bars) is shown: stderr is a terminal and not `--quiet`.
pub fn interactive() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// Drop library warnings (and errors) while `mute` is true; info and debug lines still print.
pub fn mute_warnings(mute: bool) {
    MUTED.store(mute, Ordering::Relaxed);
}

/// Print `message` on stderr unless `--quiet`, above the spinner if one is running.
pub fn note(message: impl Display) {
    if !quiet() {
        eprint_above_spinner(&message.to_string());
    }
}

fn eprint_above_spinner(line: &str) {
    let mut bytes = line.as_bytes().to_vec();
    bytes.push(b'\n');
    write_above_spinner(&bytes);
}

/// Write `bytes` to stderr in one piece, with the spinner (if any) cleared meanwhile.
fn write_above_spinner(bytes: &[u8]) {
    let spinner = SPINNER.lock().ok().and_then(|s| s.clone());
    // A failed write to stderr has nowhere to be reported.
    let write = || drop(std::io::stderr().lock().write_all(bytes));
    match spinner {
        Some(spinner) => spinner.suspend(write),
        None => write(),
    }
}

/// A spinner on stderr for as long as the value lives (hidden without a terminal or with
/// `--quiet`).
#[derive(Debug)]
pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    pub fn start(message: String) -> Self {
        if !interactive() {
            return Self { bar: ProgressBar::hidden() };
        }
        let bar = ProgressBar::new_spinner().with_message(message);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut slot) = SPINNER.lock() {
            *slot = Some(bar.clone());
        }
        Self { bar }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Ok(mut slot) = SPINNER.lock() {
            *slot = None;
        }
        self.bar.finish_and_clear();
    }
}

/// Where log lines go: stderr, above the spinner. Each event is buffered and written in one
/// piece when its writer drops, so a line is never split by the spinner's redraw; while
/// [`mute_warnings`] is on, warnings and errors go nowhere.
struct AboveSpinner;

/// One event's bytes, written out on drop.
struct LogLine {
    buffer: Vec<u8>,
    muted: bool,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.muted && !self.buffer.is_empty() {
            write_above_spinner(&self.buffer);
        }
    }
}

impl<'a> MakeWriter<'a> for AboveSpinner {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine { buffer: Vec::new(), muted: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LogLine {
        let muted = *meta.level() <= Level::WARN && MUTED.load(Ordering::Relaxed);
        LogLine { buffer: Vec::new(), muted }
    }
}

/// Warnings and errors as `warning: <message> (key=value, ...)` / `error: ...` lines, as
/// the CLI has always printed them; info, debug and trace as `tracing-subscriber`'s full
/// format with the time since start (`0.123s DEBUG span{..}: target: message key=value`).
struct CliFormat {
    verbose: Format<Full, Uptime>,
}

impl Default for CliFormat {
    fn default() -> Self {
        Self { verbose: Format::default().with_timer(Uptime::default()).with_ansi(false) }
    }
}

impl<S, N> FormatEvent<S, N> for CliFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return self.verbose.format_event(ctx, writer, event);
        }
        let mut message = Message::default();
        event.record(&mut message);
        let kind = if level == Level::ERROR { "error" } else { "warning" };
        write!(writer, "{kind}: {}", message.message)?;
        if !message.fields.is_empty() {
            write!(writer, " ({})", message.fields.join(", "))?;
        }
        writeln!(writer)
    }
}

/// The `message` field of an event, then its other fields as `key=value`.
#[derive(Default)]
struct Message {
    message: String,
    fields: Vec<String>,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            name => self.fields.push(format!("{name}={value}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            name => self.fields.push(format!("{name}={value:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_over_the_verbosity() {
        assert_eq!(filter_directives(None, 0), "warn");
        assert_eq!(filter_directives(None, 1), "warn,autocandle=info");
        assert_eq!(filter_directives(None, 2), "warn,autocandle=debug");
        assert_eq!(filter_directives(None, 7), "warn,autocandle=trace");
        assert_eq!(filter_directives(Some("autocandle_core=debug"), 0), "autocandle_core=debug");
        assert_eq!(filter_directives(Some("error"), 2), "error");
        // An empty RUST_LOG is no RUST_LOG.
        assert_eq!(filter_directives(Some(" "), 1), "warn,autocandle=info");
    }
}
