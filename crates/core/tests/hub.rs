//! Hub conventions end to end: a fake `HF_HOME` in a temp dir, and (with the `hub` feature) a
//! local HTTP server standing in for the Hub: downloads into the cache layout, cache hits
//! without requests, relative redirects, 404 -> `.no_exist`, tokens, `HF_ENDPOINT` and resumed
//! downloads. The environment is passed as a map (`ModelSource::resolve_with_env`), never set.

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "hub")]
mod fake_hub;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const CONFIG: &[u8] = br#"{"model_type": "bert"}"#;

/// An environment with `HF_HOME` and the given variables.
fn env(hf_home: &Path, vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let mut map: HashMap<String, OsString> = vars.iter().map(|(k, v)| ((*k).to_owned(), OsString::from(v))).collect();
    map.insert("HF_HOME".to_owned(), hf_home.as_os_str().to_owned());
    move |name| map.get(name).cloned()
}

fn repo_dir(hf_home: &Path, id: &str) -> std::path::PathBuf {
    hf_home.join("hub").join(format!("models--{}", id.replace('/', "--")))
}

#[cfg(feature = "hub")]
mod downloads {
    use super::fake_hub::{etag_of, proxy_in_env, resolve, resolve_via_cache_api, FakeHub, Repo};
    use super::*;

    /// `true` (after saying why) when requests to 127.0.0.1 would go to a proxy.
    fn skip_for_proxy() -> bool {
        if let Some(var) = proxy_in_env() {
            eprintln!("skipped: {var} is set and ureq 2 sends every request to it, 127.0.0.1 included");
            return true;
        }
        false
    }

    fn tiny_repo() -> Repo {
        Repo::new("org/tiny", SHA, &[("config.json", CONFIG), ("sub/vocab.txt", b"[PAD]\n[UNK]\n")])
    }

    /// The fake Hub serving [`tiny_repo`], an empty `HF_HOME`, and an environment with both
    /// (`HF_ENDPOINT`) and `extra`; `None`, after saying why, when a proxy would get the requests.
    fn tiny_hub(extra: &[(&str, &str)]) -> Option<(FakeHub, tempfile::TempDir, impl Fn(&str) -> Option<OsString>)> {
        if skip_for_proxy() {
            return None;
        }
        let hub = FakeHub::serving(vec![tiny_repo()]);
        let home = tempfile::tempdir().unwrap();
        let url = hub.url();
        let mut vars = vec![("HF_ENDPOINT", url.as_str())];
        vars.extend_from_slice(extra);
        let vars = env(home.path(), &vars);
        Some((hub, home, vars))
    }

    #[test]
    fn a_download_lands_in_the_cache_layout_and_the_next_lookup_makes_no_request() {
        let Some((hub, home, vars)) = tiny_hub(&[]) else { return };
        let source = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
        let path = source.file("config.json").unwrap();

        let repo = repo_dir(home.path(), "org/tiny");
        assert_eq!(path, repo.join("snapshots").join(SHA).join("config.json"));
        assert_eq!(std::fs::read(&path).unwrap(), CONFIG);
        let blob = repo.join("blobs").join(etag_of(CONFIG));
        assert_eq!(std::fs::read(&blob).unwrap(), CONFIG);
        #[cfg(unix)]
        {
            let link = std::fs::read_link(&path).unwrap();
            assert!(link.is_relative(), "{}", link.display());
            assert_eq!(std::fs::canonicalize(&path).unwrap(), std::fs::canonicalize(&blob).unwrap());
        }
        assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), SHA);
        assert!(!hub.requests().is_empty());
        // The User-Agent names autocandle.
        let agent = hub.requests()[0].header("user-agent").unwrap_or_default().to_owned();
        assert!(agent.contains("autocandle/"), "{agent}");

        // A file in a subfolder too.
        let sub = LoadOptions::new().subfolder("sub");
        let vocab = ModelSource::resolve_with_env("org/tiny", &sub, &vars).unwrap().file("vocab.txt").unwrap();
        assert_eq!(vocab, repo.join("snapshots").join(SHA).join("sub/vocab.txt"));

        // The next lookups (a new source, as a new load makes) are served from the cache.
        hub.clear();
        let again = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
        assert_eq!(again.file("config.json").unwrap(), path);
        let again = ModelSource::resolve_with_env("org/tiny", &sub, &vars).unwrap();
        assert_eq!(again.file("vocab.txt").unwrap(), vocab);
        assert_eq!(hub.requests().len(), 0, "{:?}", hub.requests());
    }

    #[test]
    fn relative_redirects_of_a_renamed_repo_and_to_resolve_cache_are_followed() {
        if skip_for_proxy() {
            return;
        }
        let repos = vec![Repo::new("org/new-name", SHA, &[("config.json", CONFIG)])];
        let hub = FakeHub::start(move |req| resolve(req, &repos, &[("org/old-name", "org/new-name")], None));
        let home = tempfile::tempdir().unwrap();
        let vars = env(home.path(), &[("HF_ENDPOINT", &hub.url())]);
        let source = ModelSource::resolve_with_env("org/old-name", &LoadOptions::new(), &vars).unwrap();
        let path = source.file("config.json").unwrap();
        // Stored under the name asked for, as `huggingface_hub` does.
        assert!(path.starts_with(repo_dir(home.path(), "org/old-name")), "{}", path.display());
        assert_eq!(std::fs::read(&path).unwrap(), CONFIG);
        let paths: Vec<String> = hub.requests().into_iter().map(|r| r.path).collect();
        assert!(paths.contains(&"/org/old-name/resolve/main/config.json".to_owned()), "{paths:?}");
        assert!(paths.contains(&"/org/new-name/resolve/main/config.json".to_owned()), "{paths:?}");

        // The Hub's redirect to `/api/resolve-cache/...`, with a query.
        let repos = vec![tiny_repo()];
        let hub = FakeHub::start(move |req| resolve_via_cache_api(req, &repos));
        let vars = env(home.path(), &[("HF_ENDPOINT", &hub.url())]);
        let path =
            ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap().file("config.json").unwrap();
        assert_eq!(path, repo_dir(home.path(), "org/tiny").join("snapshots").join(SHA).join("config.json"));
        assert_eq!(std::fs::read(&path).unwrap(), CONFIG);
        let cache_api = format!("/api/resolve-cache/models/org/tiny/{SHA}/config.json?etag=%22x%22");
        assert!(hub.requests().iter().any(|r| r.path == cache_api), "{:?}", hub.requests());
    }

    #[test]
    fn a_404_is_recorded_in_no_exist_and_the_next_lookup_makes_no_request() {
        let Some((hub, home, vars)) = tiny_hub(&[]) else { return };
        let source = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
        assert_eq!(source.optional_file("generation_config.json").unwrap(), None);
        assert_eq!(hub.requests().len(), 1, "{:?}", hub.requests());

        let repo = repo_dir(home.path(), "org/tiny");
        assert!(repo.join(".no_exist").join(SHA).join("generation_config.json").is_file());
        assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), SHA);

        hub.clear();
        let again = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
        assert_eq!(again.optional_file("generation_config.json").unwrap(), None);
        let err = again.file("generation_config.json").unwrap_err();
        assert!(matches!(err, Error::FileNotFound { .. }), "{err}");
        assert_eq!(hub.requests().len(), 0, "{:?}", hub.requests());

        // A 404 without `X-Repo-Commit` (an unknown repo) records nothing.
        let unknown = ModelSource::resolve_with_env("org/unknown", &LoadOptions::new(), &vars).unwrap();
        assert_eq!(unknown.optional_file("config.json").unwrap(), None);
        assert!(!repo_dir(home.path(), "org/unknown").exists());
    }

    /// The `Authorization` headers of every request for `file` with `opts` and `vars`.
    fn auth_headers(hub: &FakeHub, vars: &dyn Fn(&str) -> Option<OsString>, opts: &LoadOptions) -> Vec<Option<String>> {
        hub.clear();
        let opts = opts.clone().force_download(true);
        ModelSource::resolve_with_env("org/tiny", &opts, vars).unwrap().file("config.json").unwrap();
        let headers: Vec<Option<String>> =
            hub.requests().iter().map(|r| r.header("authorization").map(str::to_owned)).collect();
        assert!(!headers.is_empty());
        headers
    }

    #[test]
    fn the_saved_token_is_sent_and_an_explicit_token_or_hf_token_wins() {
        if skip_for_proxy() {
            return;
        }
        let hub = FakeHub::serving(vec![tiny_repo()]);
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "hf_saved_by_login\n").unwrap();
        let url = hub.url();
        let bearer = |t: &str| Some(format!("Bearer {t}"));

        let saved = env(home.path(), &[("HF_ENDPOINT", &url)]);
        for header in auth_headers(&hub, &saved, &LoadOptions::new()) {
            assert_eq!(header, bearer("hf_saved_by_login"));
        }
        for header in auth_headers(&hub, &saved, &LoadOptions::new().token("hf_explicit")) {
            assert_eq!(header, bearer("hf_explicit"));
        }
        let hf_token = env(home.path(), &[("HF_ENDPOINT", &url), ("HF_TOKEN", "hf_env")]);
        for header in auth_headers(&hub, &hf_token, &LoadOptions::new()) {
            assert_eq!(header, bearer("hf_env"));
        }
        // No token anywhere: no header.
        let empty_home = tempfile::tempdir().unwrap();
        let none = env(empty_home.path(), &[("HF_ENDPOINT", &url)]);
        for header in auth_headers(&hub, &none, &LoadOptions::new()) {
            assert_eq!(header, None);
        }
    }

    #[test]
    fn a_private_repo_without_a_token_says_to_log_in() {
        if skip_for_proxy() {
            return;
        }
        let repos = vec![tiny_repo()];
        let hub = FakeHub::start(move |req| resolve(req, &repos, &[], Some(("org/tiny", "hf_secret"))));
        let home = tempfile::tempdir().unwrap();
        let vars = env(home.path(), &[("HF_ENDPOINT", &hub.url())]);
        let err = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars)
            .unwrap()
            .file("config.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("401") && err.contains("huggingface-cli login"), "{err}");
        let opts = LoadOptions::new().token("hf_secret");
        assert!(ModelSource::resolve_with_env("org/tiny", &opts, &vars).unwrap().file("config.json").is_ok());
    }

    #[test]
    fn hf_endpoint_picks_the_server_and_the_endpoint_option_wins() {
        if skip_for_proxy() {
            return;
        }
        let hub = FakeHub::serving(vec![tiny_repo()]);
        let home = tempfile::tempdir().unwrap();
        // A trailing `/` is trimmed (else the path would start with `//`).
        let vars = env(home.path(), &[("HF_ENDPOINT", &format!("{}/", hub.url()))]);
        let source = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
        assert_eq!(source.hub_settings().endpoint(), hub.url());
        source.file("config.json").unwrap();
        assert_eq!(hub.requests()[0].path, "/org/tiny/resolve/main/config.json");

        // `LoadOptions::endpoint` beats `HF_ENDPOINT` (here a port nothing listens on).
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let home = tempfile::tempdir().unwrap();
        let vars = env(home.path(), &[("HF_ENDPOINT", &format!("http://{closed}"))]);
        let err = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap().file("config.json");
        assert!(matches!(err, Err(Error::Hub { .. })), "{err:?}");
        let opts = LoadOptions::new().endpoint(hub.url());
        assert!(ModelSource::resolve_with_env("org/tiny", &opts, &vars).unwrap().file("config.json").is_ok());
    }

    #[test]
    fn a_partial_download_resumes_with_a_range_request() {
        if skip_for_proxy() {
            return;
        }
        let weights: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let hub = FakeHub::serving(vec![Repo::new("org/tiny", SHA, &[("model.safetensors", &weights)])]);
        let home = tempfile::tempdir().unwrap();
        // The part file hf-hub left behind: `blobs/<etag>.part`.
        let blobs = repo_dir(home.path(), "org/tiny").join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join(format!("{}.part", etag_of(&weights))), &weights[..1000]).unwrap();

        let vars = env(home.path(), &[("HF_ENDPOINT", &hub.url())]);
        let source = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
        let path = source.file("model.safetensors").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), weights);
        let ranges: Vec<String> = hub.requests().iter().filter_map(|r| r.header("range").map(str::to_owned)).collect();
        assert!(ranges.contains(&"bytes=1000-".to_owned()), "{ranges:?}");
        assert!(!ranges.contains(&"bytes=0-".to_owned()), "{ranges:?}");
    }

    #[test]
    fn offline_mode_makes_no_request() {
        let Some((hub, _home, vars)) = tiny_hub(&[("HF_HUB_OFFLINE", "1")]) else { return };
        let source = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
        let err = source.file("config.json").unwrap_err().to_string();
        assert!(err.contains("offline mode is on"), "{err}");
        assert_eq!(hub.requests().len(), 0);
    }
}

/// A cache holding `org/tiny` at `SHA` with `config.json`, as Python leaves it.
#[cfg(not(feature = "hub"))]
fn filled_cache(hf_home: &Path) {
    let repo = repo_dir(hf_home, "org/tiny");
    std::fs::create_dir_all(repo.join("snapshots").join(SHA)).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), SHA).unwrap();
    std::fs::write(repo.join("snapshots").join(SHA).join("config.json"), CONFIG).unwrap();
}

#[cfg(not(feature = "hub"))]
#[test]
fn without_the_hub_feature_a_download_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    filled_cache(home.path());
    // An endpoint that would answer if anything asked it: nothing does.
    let vars = env(home.path(), &[("HF_ENDPOINT", "http://127.0.0.1:9")]);

    // A filled cache works as with downloads.
    let source = ModelSource::resolve_with_env("org/tiny", &LoadOptions::new(), &vars).unwrap();
    assert_eq!(std::fs::read(source.file("config.json").unwrap()).unwrap(), CONFIG);
    // A file the cached revision lacks is missing, as in offline mode, and says why.
    assert_eq!(source.optional_file("tokenizer.json").unwrap(), None);
    let err = source.file("tokenizer.json").unwrap_err().to_string();
    assert!(err.contains("tokenizer.json") && err.contains("`hub` feature"), "{err}");

    // A repo the cache does not have: which file, which repo, why, and what to do.
    let source = ModelSource::resolve_with_env("org/elsewhere", &LoadOptions::new(), &vars).unwrap();
    let err = source.optional_file("config.json").unwrap_err();
    assert!(matches!(err, Error::Hub { .. }), "{err}");
    let err = err.to_string();
    for part in [
        "`config.json`",
        "`org/elsewhere`",
        "`hub` feature of autocandle is off",
        "huggingface-cli download",
        "local folder",
    ] {
        assert!(err.contains(part), "{part} not in: {err}");
    }
}
