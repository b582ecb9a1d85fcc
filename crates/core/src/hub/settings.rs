//! The Hub settings of one load: [`LoadOptions`] merged with the environment variables that
//! Python's `huggingface_hub` reads, in one pure function over an environment lookup.
//!
//! Every variable is read here and nowhere else in the library, through a lookup closure, so
//! tests pass a map instead of mutating the process environment (which is global and shared by
//! tests running in parallel).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::options::LoadOptions;

/// The Hub's address when neither [`LoadOptions::endpoint`] nor `HF_ENDPOINT` names another.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where a load looks for files and how it talks to the Hub: [`LoadOptions`] first, then the
/// environment, read as `huggingface_hub` reads it.
///
/// | Setting | Source, first that is set wins |
/// |---|---|
/// | [`cache_dir`](Self::cache_dir) | [`LoadOptions::cache_dir`], `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`; `HF_HOME` defaults to `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` |
/// | [`endpoint`](Self::endpoint) | [`LoadOptions::endpoint`], `HF_ENDPOINT`, `https://huggingface.co`; a trailing `/` is trimmed |
/// | [`token`](Self::token) | [`LoadOptions::token`], `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, the file at `HF_TOKEN_PATH`, else `$HF_HOME/token` (what `huggingface-cli login` saves); with `HF_HUB_DISABLE_IMPLICIT_TOKEN` only the explicit token |
/// | [`offline`](Self::offline) | [`LoadOptions::local_files_only`], or `HF_HUB_OFFLINE` (else `TRANSFORMERS_OFFLINE`) true |
/// | [`progress`](Self::progress) | [`LoadOptions::progress`], unless `HF_HUB_DISABLE_PROGRESS_BARS` is true |
///
/// A flag is true when its value is `1`, `ON`, `YES` or `TRUE` (any case). Tokens are trimmed
/// and an empty one counts as none; an empty variable counts as unset; a leading `~` in a path
/// is the home folder (`HOME`, else `USERPROFILE`).
///
/// `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT` are not read: hf-hub 0.4's blocking
/// client builds its HTTP agent itself with no timeout but the connect one (30 s) and offers no
/// way to set one, so a stalled request waits until the connection drops.
#[derive(Clone, PartialEq, Eq)]
pub struct HubSettings {
    cache_dir: PathBuf,
    endpoint: String,
    token: Option<String>,
    offline: bool,
    progress: bool,
}

impl fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret: say whether there is one, never what it is.
        f.debug_struct("HubSettings")
            .field("cache_dir", &self.cache_dir)
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .field("progress", &self.progress)
            .finish()
    }
}

/// Whether a flag like `HF_HUB_OFFLINE` has a true value (`huggingface_hub`'s `_is_true`).
fn is_true(value: Option<&OsStr>) -> bool {
    value
        .and_then(OsStr::to_str)
        .is_some_and(|v| matches!(v.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
}

/// A token with line breaks and surrounding blanks removed; `None` when nothing is left
/// (`huggingface_hub`'s `_clean_token`).
fn clean_token(token: &str) -> Option<String> {
    let token = token.replace(['\r', '\n'], "");
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

impl HubSettings {
    /// The settings of `opts` with the process environment.
    pub fn from_env(opts: &LoadOptions) -> Self {
        Self::from_lookup(opts, |name| std::env::var_os(name))
    }

    /// The settings of `opts` with the environment that `env` describes (`env("HF_HOME")` is
    /// the value of `HF_HOME`, `None` when unset). Reads the token file when the token comes
    /// from it; touches nothing else.
    pub fn from_lookup(opts: &LoadOptions, env: impl Fn(&str) -> Option<OsString>) -> Self {
        let env = Env(&env);
        let hf_home = env.hf_home();
        let cache_dir = opts.cache_dir.clone().unwrap_or_else(|| env.cache_dir(&hf_home));
        let var = |name: &str| env.var(name);
        let path_var = |name: &str| env.path_var(name);

        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| var("HF_ENDPOINT").and_then(|v| v.into_string().ok()))
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());

        let explicit = opts.token.as_deref().and_then(clean_token);
        let token = explicit.or_else(|| {
            if is_true(var("HF_HUB_DISABLE_IMPLICIT_TOKEN").as_deref()) {
                return None;
            }
            let from_env = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
                .into_iter()
                .find_map(|name| var(name).and_then(|v| v.into_string().ok()).and_then(|v| clean_token(&v)));
            from_env.or_else(|| {
                let file = path_var("HF_TOKEN_PATH").unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(file).ok().and_then(|t| clean_token(&t))
            })
        });

        // `huggingface_hub` reads `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE`: the first one set.
        let offline_var = var("HF_HUB_OFFLINE").or_else(|| var("TRANSFORMERS_OFFLINE"));
        let offline = opts.local_files_only || is_true(offline_var.as_deref());
        let progress = opts.progress && !is_true(var("HF_HUB_DISABLE_PROGRESS_BARS").as_deref());

        Self { cache_dir, endpoint, token, offline, progress }
    }

    /// The Hub cache folder (the one holding `models--org--name`).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The Hub's address, without a trailing `/` (`https://huggingface.co`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The access token sent as `Authorization: Bearer <token>`, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether the network is off limits: only the cache is used.
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// Whether downloads draw progress bars on stderr.
    pub fn progress(&self) -> bool {
        self.progress
    }
}

/// The cache folder from the process environment alone, without reading the token file.
pub(super) fn cache_dir_from_env() -> PathBuf {
    let lookup = |name: &str| std::env::var_os(name);
    let env = Env(&lookup);
    env.cache_dir(&env.hf_home())
}

/// An environment lookup, with the rules every variable follows.
struct Env<'a>(&'a dyn Fn(&str) -> Option<OsString>);

impl Env<'_> {
    /// The value of `name`; an empty variable counts as unset.
    fn var(&self, name: &str) -> Option<OsString> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    fn home_dir(&self) -> Option<PathBuf> {
        self.var("HOME").or_else(|| self.var("USERPROFILE")).map(PathBuf::from)
    }

    /// A path variable, with a leading `~` expanded.
    fn path_var(&self, name: &str) -> Option<PathBuf> {
        self.var(name).map(|v| expand_user(&v, self.home_dir()))
    }

    /// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
    fn hf_home(&self) -> PathBuf {
        self.path_var("HF_HOME").unwrap_or_else(|| {
            let cache = self
                .path_var("XDG_CACHE_HOME")
                .or_else(|| self.home_dir().map(|h| h.join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"));
            cache.join("huggingface")
        })
    }

    /// `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `<hf_home>/hub`.
    fn cache_dir(&self, hf_home: &Path) -> PathBuf {
        self.path_var("HF_HUB_CACHE")
            .or_else(|| self.path_var("HUGGINGFACE_HUB_CACHE"))
            .unwrap_or_else(|| hf_home.join("hub"))
    }
}

/// `~` and `~/rest` with the home folder, as Python's `os.path.expanduser`; anything else as is.
fn expand_user(value: &OsStr, home: Option<PathBuf>) -> PathBuf {
    let path = Path::new(value);
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(opts: &LoadOptions, vars: &[(&str, &str)]) -> HubSettings {
        let vars: HashMap<String, OsString> = vars.iter().map(|(k, v)| ((*k).to_owned(), OsString::from(v))).collect();
        HubSettings::from_lookup(opts, |name| vars.get(name).cloned())
    }

    #[test]
    fn cache_dir_follows_huggingface_hub() {
        let opts = LoadOptions::new();
        let home = [("HOME", "/home/u")];
        assert_eq!(settings(&opts, &home).cache_dir(), Path::new("/home/u/.cache/huggingface/hub"));
        let xdg = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")];
        assert_eq!(settings(&opts, &xdg).cache_dir(), Path::new("/xdg/huggingface/hub"));
        let hf_home = [("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg"), ("HF_HOME", "~/hf")];
        assert_eq!(settings(&opts, &hf_home).cache_dir(), Path::new("/home/u/hf/hub"));
        let old = [("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/old")];
        assert_eq!(settings(&opts, &old).cache_dir(), Path::new("/old"));
        let both = [("HF_HOME", "/hf"), ("HUGGINGFACE_HUB_CACHE", "/old"), ("HF_HUB_CACHE", "/new")];
        assert_eq!(settings(&opts, &both).cache_dir(), Path::new("/new"));
        let explicit = LoadOptions::new().cache_dir("/mine");
        assert_eq!(settings(&explicit, &both).cache_dir(), Path::new("/mine"));
        // An empty variable counts as unset.
        let empty = [("HOME", "/home/u"), ("HF_HOME", "")];
        assert_eq!(settings(&opts, &empty).cache_dir(), Path::new("/home/u/.cache/huggingface/hub"));
    }

    #[test]
    fn endpoint_from_options_then_hf_endpoint() {
        let opts = LoadOptions::new();
        assert_eq!(settings(&opts, &[]).endpoint(), "https://huggingface.co");
        assert_eq!(settings(&opts, &[("HF_ENDPOINT", "")]).endpoint(), "https://huggingface.co");
        let mirror = [("HF_ENDPOINT", "https://hf-mirror.com//")];
        assert_eq!(settings(&opts, &mirror).endpoint(), "https://hf-mirror.com");
        let explicit = LoadOptions::new().endpoint("http://127.0.0.1:9/");
        assert_eq!(settings(&explicit, &mirror).endpoint(), "http://127.0.0.1:9");
    }

    #[test]
    fn token_precedence_and_token_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "  hf_from_file\n").unwrap();
        let other = home.path().join("other-token");
        std::fs::write(&other, "hf_from_token_path").unwrap();
        let hf_home = home.path().to_str().unwrap();
        let opts = LoadOptions::new();

        assert_eq!(settings(&opts, &[("HF_HOME", hf_home)]).token(), Some("hf_from_file"));
        let token_path = [("HF_HOME", hf_home), ("HF_TOKEN_PATH", other.to_str().unwrap())];
        assert_eq!(settings(&opts, &token_path).token(), Some("hf_from_token_path"));
        let env = [("HF_HOME", hf_home), ("HF_TOKEN", " hf_env ")];
        assert_eq!(settings(&opts, &env).token(), Some("hf_env"));
        let old = [("HF_HOME", hf_home), ("HUGGING_FACE_HUB_TOKEN", "hf_old")];
        assert_eq!(settings(&opts, &old).token(), Some("hf_old"));
        // An empty `HF_TOKEN` is no token: the file is used.
        assert_eq!(settings(&opts, &[("HF_HOME", hf_home), ("HF_TOKEN", "")]).token(), Some("hf_from_file"));
        let explicit = LoadOptions::new().token("hf_explicit");
        assert_eq!(settings(&explicit, &env).token(), Some("hf_explicit"));
        // `HF_HUB_DISABLE_IMPLICIT_TOKEN` keeps only the explicit token.
        let no_implicit = [("HF_HOME", hf_home), ("HF_TOKEN", "hf_env"), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")];
        assert_eq!(settings(&opts, &no_implicit).token(), None);
        assert_eq!(settings(&explicit, &no_implicit).token(), Some("hf_explicit"));

        // An empty token file, or none, is no token.
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("token"), "\n").unwrap();
        assert_eq!(settings(&opts, &[("HF_HOME", empty.path().to_str().unwrap())]).token(), None);
        let none = tempfile::tempdir().unwrap();
        assert_eq!(settings(&opts, &[("HF_HOME", none.path().to_str().unwrap())]).token(), None);

        // The `Debug` outputs never show it.
        let shown = format!("{:?} {explicit:?}", settings(&explicit, &[]));
        assert!(shown.contains("<redacted>") && !shown.contains("hf_explicit"), "{shown}");
    }

    #[test]
    fn offline_flags() {
        let opts = LoadOptions::new();
        assert!(!settings(&opts, &[]).offline());
        for v in ["1", "on", "YES", "true"] {
            assert!(settings(&opts, &[("HF_HUB_OFFLINE", v)]).offline(), "{v}");
        }
        assert!(!settings(&opts, &[("HF_HUB_OFFLINE", "0")]).offline());
        assert!(settings(&opts, &[("TRANSFORMERS_OFFLINE", "1")]).offline());
        // `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE`: a set `HF_HUB_OFFLINE` decides.
        assert!(!settings(&opts, &[("HF_HUB_OFFLINE", "0"), ("TRANSFORMERS_OFFLINE", "1")]).offline());
        assert!(settings(&LoadOptions::new().local_files_only(true), &[("HF_HUB_OFFLINE", "0")]).offline());
    }

    #[test]
    fn hf_hub_disable_progress_bars_turns_progress_off() {
        let on = LoadOptions::new().progress(true);
        assert!(settings(&on, &[]).progress());
        assert!(!settings(&on, &[("HF_HUB_DISABLE_PROGRESS_BARS", "1")]).progress());
        assert!(settings(&on, &[("HF_HUB_DISABLE_PROGRESS_BARS", "0")]).progress());
        // It never turns bars on.
        assert!(!settings(&LoadOptions::new(), &[("HF_HUB_DISABLE_PROGRESS_BARS", "0")]).progress());
    }
}
