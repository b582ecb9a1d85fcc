//! Feedback on stderr: notes, the spinner shown while a model loads, and the library's
//! `tracing` warnings (a loading report, an ignored fill-mask target) as `warning:` lines.
//! Everything here is silent with `--quiet`; the spinner and download bars also need a
//! terminal.

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

static QUIET: AtomicBool = AtomicBool::new(false);
/// While set, library warnings are dropped (`inspect` prints the loading report itself).
static MUTED: AtomicBool = AtomicBool::new(false);
/// The spinner on screen, so that notes and warnings print above it instead of through it.
static SPINNER: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Set `--quiet` and route the library's warnings to stderr.
pub fn init(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    // Fails only when a subscriber is already set, which keeps that one.
    let _ = tracing::subscriber::set_global_default(StderrWarnings { next_span: AtomicU64::new(1) });
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Whether progress (spinner, download bars) is shown: stderr is a terminal and not `--quiet`.
pub fn interactive() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// Drop library warnings while `mute` is true.
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
    let spinner = SPINNER.lock().ok().and_then(|s| s.clone());
    match spinner {
        Some(spinner) => spinner.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
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

/// A `tracing` subscriber that prints warnings and errors as `warning: <message>` lines.
struct StderrWarnings {
    next_span: AtomicU64,
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

impl Subscriber for StderrWarnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::WARN)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if quiet() || MUTED.load(Ordering::Relaxed) {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let mut line = message.message;
        if !message.fields.is_empty() {
            line = format!("{line} ({})", message.fields.join(", "));
        }
        let kind = if *event.metadata().level() == Level::ERROR { "error" } else { "warning" };
        eprint_above_spinner(&format!("{kind}: {line}"));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
