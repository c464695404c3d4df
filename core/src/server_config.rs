//! The one TOML file that configures a server: listener and limits, API keys (each with a
//! tenant and a rate limit), models and their adapters, routes, safety, audit and the
//! response cache. Relative paths are relative to the file. A mistake is
//! [`Error::Config`] naming the file and line.
//!
//! ```toml
//! [server]
//! bind = "127.0.0.1:8080"          # the default: loopback only
//! max_body_bytes = 1048576
//! request_timeout_secs = 300
//! shutdown_grace_secs = 30
//!
//! [[api_keys]]                      # no keys = no authentication (loopback use)
//! key_sha256 = "9f86d0…"            # or key = "…"; the hash keeps the secret out of the file
//! tenant = "ward-7"
//! requests_per_minute = 120         # 0 = unlimited
//!
//! [[models]]
//! id = "smollm2"
//! path = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
//! slots = 4
//! n_ctx = 4096                      # per slot
//! adapters = [{ name = "finance", path = "finance.gguf" }]
//!
//! [[routes]]                        # see `router`; none = one route per model
//! name = "finance"
//! model = "smollm2"
//! adapters = [{ name = "finance" }]
//! keywords = ["invoice", "tax"]
//!
//! [safety]
//! enabled = true
//! policy = "policy.toml"            # default: the built-in policy
//!
//! [audit]
//! dir = "/var/log/llmedge"
//! fsync = "every:100"               # always | every:N | interval_ms:N | never
//!
//! [cache]
//! backend = "memory"                # none | memory | redis
//! ttl_secs = 600
//! redis_url = "redis://127.0.0.1:6379/0"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{AuditConfig, FsyncPolicy};
use crate::error::{Error, Result};
use crate::model::hex;
use crate::router::{ClassifierConfig, RouteConfig};

/// The listener and request limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on; loopback unless the operator says otherwise.
    pub bind: String,
    /// Requests with a larger body are refused (HTTP 413).
    pub max_body_bytes: usize,
    /// Deadline of every request, queued or generating (HTTP 504 past it).
    pub request_timeout_secs: u64,
    /// On shutdown, requests in flight get this long to finish.
    pub shutdown_grace_secs: u64,
    /// Most tokens one request may ask for (`max_tokens` above it is refused).
    pub max_tokens_limit: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 1 << 20,
            request_timeout_secs: 300,
            shutdown_grace_secs: 30,
            max_tokens_limit: 4096,
        }
    }
}

/// One API key: who it belongs to and how often it may be used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeyConfig {
    /// The key itself (prefer `key_sha256`).
    pub key: Option<String>,
    /// SHA-256 of the key, hex.
    pub key_sha256: Option<String>,
    /// The tenant requests with this key are accounted to (audit log, routing, cache scope).
    pub tenant: String,
    /// Requests per minute (0 = unlimited); more gets HTTP 429.
    pub requests_per_minute: u32,
}

/// A LoRA adapter loaded into a model, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    pub name: String,
    pub path: PathBuf,
}

/// One model the server runs, with its engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// The name clients use (`"model"` in requests, `/v1/models`).
    pub id: String,
    /// The GGUF file; empty = the default model (fetched on first use).
    pub path: PathBuf,
    /// The vision projector (mmproj GGUF) for a vision-language model: requests may then
    /// carry images.
    pub mmproj: Option<PathBuf>,
    pub slots: u32,
    /// Context window per slot.
    pub n_ctx: Option<u32>,
    /// Most tokens one decode step evaluates.
    pub n_batch: Option<u32>,
    pub threads: Option<u32>,
    pub n_gpu_layers: u32,
    pub max_queue: usize,
    /// Most prompt tokens one request may have; a longer prompt is error 74 `limit` (HTTP
    /// 400). `None` = only the context window bounds it.
    pub max_prompt_tokens: Option<u32>,
    /// Host memory for cached prompt prefixes, in MiB.
    pub prefix_cache_mb: usize,
    pub adapters: Vec<AdapterConfig>,
    /// Chat template override (Jinja source or a llama.cpp built-in name).
    pub chat_template: Option<String>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            id: String::new(),
            path: PathBuf::new(),
            mmproj: None,
            slots: 4,
            n_ctx: None,
            n_batch: None,
            threads: None,
            n_gpu_layers: 0,
            max_queue: 64,
            max_prompt_tokens: None,
            prefix_cache_mb: 256,
            adapters: Vec::new(),
            chat_template: None,
        }
    }
}

/// Routing settings besides the routes themselves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSection {
    /// Refuse (HTTP 404) a request naming a model that is neither a route nor an alias;
    /// otherwise such requests are routed by the other rules.
    pub strict_model_names: bool,
    pub classifier: Option<ClassifierConfig>,
}

/// The safety layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetySection {
    pub enabled: bool,
    /// A policy file; `None` = the built-in policy.
    pub policy: Option<PathBuf>,
}

impl Default for SafetySection {
    fn default() -> Self {
        SafetySection {
            enabled: true,
            policy: None,
        }
    }
}

/// The audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// The log directory; `None` = no audit log.
    pub dir: Option<PathBuf>,
    /// `always`, `every:N` (records), `interval_ms:N` or `never`.
    pub fsync: String,
    pub rotate_mb: u64,
    pub store_redacted_text: bool,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            dir: None,
            fsync: "every:100".into(),
            rotate_mb: 64,
            store_redacted_text: false,
        }
    }
}

/// Which response cache backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    None,
    #[default]
    Memory,
    Redis,
}

/// The response cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    pub backend: CacheBackend,
    /// Entries of the memory backend.
    pub capacity: usize,
    pub ttl_secs: u64,
    pub redis_url: String,
    pub redis_prefix: String,
    pub redis_timeout_ms: u64,
    pub share_across_tenants: bool,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            backend: CacheBackend::Memory,
            capacity: 1000,
            ttl_secs: 600,
            redis_url: "redis://127.0.0.1:6379/0".into(),
            redis_prefix: "llmedge:response:".into(),
            redis_timeout_ms: 200,
            share_across_tenants: false,
        }
    }
}

/// A whole server configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub server: ServerSection,
    pub api_keys: Vec<ApiKeyConfig>,
    pub models: Vec<ModelConfig>,
    pub routes: Vec<RouteConfig>,
    pub router: RouterSection,
    pub safety: SafetySection,
    pub audit: AuditSection,
    pub cache: CacheSection,
}

pub(crate) fn config_error(
    path: &Path,
    text: &str,
    offset: Option<usize>,
    reason: impl AsRef<str>,
) -> Error {
    let line = offset.map_or(0, |o| text[..o.min(text.len())].matches('\n').count() + 1);
    Error::Config {
        path: path.to_owned(),
        line,
        reason: reason.as_ref().trim().to_owned(),
    }
}

impl ServerConfig {
    /// Read and check a configuration file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<ServerConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        ServerConfig::parse(&text, path, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parse and check a configuration; relative paths are relative to `base_dir`.
    pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<ServerConfig> {
        let mut config: ServerConfig = toml::from_str(text)
            .map_err(|e| config_error(path, text, e.span().map(|s| s.start), e.message()))?;
        let resolve = |p: &mut PathBuf| {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base_dir.join(&*p);
            }
        };
        for m in &mut config.models {
            resolve(&mut m.path);
            if let Some(p) = &mut m.mmproj {
                resolve(p);
            }
            for a in &mut m.adapters {
                resolve(&mut a.path);
            }
        }
        if let Some(p) = &mut config.safety.policy {
            resolve(p);
        }
        if let Some(p) = &mut config.audit.dir {
            resolve(p);
        }
        config
            .check()
            .map_err(|reason| config_error(path, text, None, reason))?;
        Ok(config)
    }

    /// One model (`path` empty = the default model) and nothing else: what
    /// `llmedge serve --model` runs when no file is given.
    pub fn single_model(id: &str, path: PathBuf) -> ServerConfig {
        ServerConfig {
            models: vec![ModelConfig {
                id: id.into(),
                path,
                ..ModelConfig::default()
            }],
            ..ServerConfig::default()
        }
    }

    /// Cross-field checks: every reference resolves, numbers are in range.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.models.is_empty() {
            return Err("at least one [[models]] entry is required".into());
        }
        for (i, m) in self.models.iter().enumerate() {
            if m.id.is_empty() {
                return Err(format!("model {} has no id", i + 1));
            }
            if self.models[..i].iter().any(|o| o.id == m.id) {
                return Err(format!("model id {:?} is used twice", m.id));
            }
            if m.slots == 0 || m.max_queue == 0 {
                return Err(format!(
                    "model {:?}: slots and max_queue must be at least 1",
                    m.id
                ));
            }
            for (j, a) in m.adapters.iter().enumerate() {
                if m.adapters[..j].iter().any(|o| o.name == a.name) {
                    return Err(format!(
                        "model {:?}: adapter {:?} is listed twice",
                        m.id, a.name
                    ));
                }
            }
        }
        for r in &self.routes {
            let Some(model) = self.models.iter().find(|m| m.id == r.model) else {
                return Err(format!(
                    "route {:?} names unknown model {:?}",
                    r.name, r.model
                ));
            };
            for a in &r.adapters {
                if !model.adapters.iter().any(|m| m.name == a.name) {
                    return Err(format!(
                        "route {:?} names adapter {:?}, which model {:?} does not list",
                        r.name, a.name, model.id
                    ));
                }
            }
        }
        if let Some(c) = &self.router.classifier {
            if !self.models.iter().any(|m| m.id == c.model) {
                return Err(format!("the classifier names unknown model {:?}", c.model));
            }
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            match (&k.key, &k.key_sha256) {
                (Some(key), None) if !key.is_empty() => {}
                (None, Some(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {}
                _ => {
                    return Err(format!(
                        "api key {} needs exactly one of `key` or `key_sha256` (64 hex digits)",
                        i + 1
                    ))
                }
            }
            if k.tenant.is_empty() {
                return Err(format!("api key {} needs a tenant", i + 1));
            }
        }
        self.fsync_policy()?;
        if self.server.max_body_bytes == 0 || self.server.request_timeout_secs == 0 {
            return Err("max_body_bytes and request_timeout_secs must be at least 1".into());
        }
        Ok(())
    }

    /// The audit fsync policy named by `audit.fsync`.
    pub fn fsync_policy(&self) -> std::result::Result<FsyncPolicy, String> {
        let spec = self.audit.fsync.as_str();
        let number = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("audit.fsync {spec:?}: expected a positive number"))
        };
        match spec.split_once(':') {
            None if spec == "always" => Ok(FsyncPolicy::Always),
            None if spec == "never" => Ok(FsyncPolicy::Never),
            Some(("every", n)) => Ok(FsyncPolicy::EveryRecords(number(n)?)),
            Some(("interval_ms", n)) => {
                Ok(FsyncPolicy::Interval(Duration::from_millis(number(n)?)))
            }
            _ => Err(format!(
                "audit.fsync {spec:?}: expected always, every:N, interval_ms:N or never"
            )),
        }
    }

    /// The audit log configuration, if a directory is set.
    pub fn audit_config(&self) -> Option<AuditConfig> {
        let dir = self.audit.dir.clone()?;
        let mut config = AuditConfig::new(dir);
        config.fsync = self.fsync_policy().ok()?;
        config.rotate_bytes = (self.audit.rotate_mb > 0).then_some(self.audit.rotate_mb << 20);
        config.store_redacted_text = self.audit.store_redacted_text;
        Some(config)
    }
}

/// The configured API keys, checked in constant time.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    keys: Vec<([u8; 32], ApiKeyConfig)>,
}

impl ApiKeys {
    pub fn new(configs: &[ApiKeyConfig]) -> ApiKeys {
        let keys = configs
            .iter()
            .map(|c| {
                let digest: [u8; 32] = match (&c.key, &c.key_sha256) {
                    (Some(key), _) => Sha256::digest(key.as_bytes()).into(),
                    (None, Some(h)) => {
                        let mut out = [0u8; 32];
                        for (i, byte) in out.iter_mut().enumerate() {
                            *byte = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0);
                        }
                        out
                    }
                    (None, None) => [0u8; 32],
                };
                let mut public = c.clone();
                public.key = None;
                public.key_sha256 = Some(hex(&digest));
                (digest, public)
            })
            .collect();
        ApiKeys { keys }
    }

    /// The keys' configurations, each with `key` cleared and `key_sha256` set.
    pub fn configs(&self) -> impl Iterator<Item = &ApiKeyConfig> {
        self.keys.iter().map(|(_, c)| c)
    }

    /// No keys configured: every request is let in (as tenant "local").
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key's configuration (its `key` field cleared), if `presented` is one of the keys.
    /// Every configured key is compared, each in constant time, so the time taken says
    /// nothing about which key or how much of it matched.
    pub fn authenticate(&self, presented: &str) -> Option<&ApiKeyConfig> {
        use subtle::ConstantTimeEq;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (i, (key, _)) in self.keys.iter().enumerate() {
            if bool::from(key.ct_eq(&digest)) {
                found = Some(i);
            }
        }
        found.map(|i| &self.keys[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig> {
        ServerConfig::parse(
            text,
            Path::new("/etc/llmedge/server.toml"),
            Path::new("/etc/llmedge"),
        )
    }

    const GOOD: &str = r#"
[server]
bind = "0.0.0.0:9000"

[[api_keys]]
key = "secret-1"
tenant = "ward-7"
requests_per_minute = 5

[[api_keys]]
key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
tenant = "lab"

[[models]]
id = "base"
path = "models/base.gguf"
adapters = [{ name = "finance", path = "finance.gguf" }]

[[routes]]
name = "finance"
model = "base"
adapters = [{ name = "finance", scale = 0.5 }]
keywords = ["invoice"]

[audit]
dir = "audit"
fsync = "interval_ms:50"

[cache]
backend = "redis"
"#;

    #[test]
    fn a_full_configuration_parses_with_paths_relative_to_the_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:9000");
        assert_eq!(c.models[0].path, Path::new("/etc/llmedge/models/base.gguf"));
        assert_eq!(
            c.models[0].adapters[0].path,
            Path::new("/etc/llmedge/finance.gguf")
        );
        assert_eq!(
            c.audit.dir.as_deref(),
            Some(Path::new("/etc/llmedge/audit"))
        );
        assert_eq!(
            c.fsync_policy().unwrap(),
            FsyncPolicy::Interval(Duration::from_millis(50))
        );
        assert_eq!(c.cache.backend, CacheBackend::Redis);
        assert_eq!(c.routes[0].adapters[0].scale, 0.5);
        let defaults = parse("[[models]]\nid = \"m\"\n").unwrap();
        assert_eq!(
            defaults.server.bind, "127.0.0.1:8080",
            "loopback by default"
        );
        assert!(defaults.safety.enabled);
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let e = parse("[[models]]\nid = \"m\"\nslotz = 3\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("server.toml:3"), "{text}");
        assert!(text.contains("slotz"), "{text}");
        assert_eq!(e.code(), crate::ErrorCode::Config);
        for (bad, why) in [
            ("", "at least one"),
            ("[[models]]\nid = \"m\"\n[[routes]]\nname = \"r\"\nmodel = \"x\"\n", "unknown model"),
            (
                "[[models]]\nid = \"m\"\n[[routes]]\nname = \"r\"\nmodel = \"m\"\nadapters = [{ name = \"a\" }]\n",
                "does not list",
            ),
            ("[[models]]\nid = \"m\"\n[[api_keys]]\ntenant = \"t\"\n", "exactly one"),
            ("[[models]]\nid = \"m\"\n[audit]\nfsync = \"sometimes\"\n", "audit.fsync"),
            ("[[models]]\nid = \"m\"\n[[models]]\nid = \"m\"\n", "used twice"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn api_keys_match_by_key_or_hash_only() {
        let c = parse(GOOD).unwrap();
        let keys = ApiKeys::new(&c.api_keys);
        assert!(!keys.is_open());
        let k = keys.authenticate("secret-1").unwrap();
        assert_eq!(k.tenant, "ward-7");
        assert!(k.key.is_none(), "the secret is not kept in the public copy");
        // sha256("test") is the second key's hash.
        assert_eq!(keys.authenticate("test").unwrap().tenant, "lab");
        assert!(keys.authenticate("secret-2").is_none());
        assert!(keys.authenticate("").is_none());
        assert!(ApiKeys::new(&[]).is_open());
    }
}
