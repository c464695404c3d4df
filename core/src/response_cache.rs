//! The exact-match response cache: a deterministic request (greedy, or sampled with a fixed
//! seed) that was answered before is answered again from the cache, without the model.
//!
//! The key is a SHA-256 over the model's SHA-256, the adapter set (SHA-256 and scale of each),
//! the exact prompt tokens after the input check and chat rendering (so equal requests match
//! however they were spelled: text, tokens or messages), the sampling parameters, and the
//! tenant unless the cache is shared across tenants. A cached answer still goes through the
//! output filter and gets its own audit record (`serving.response_cache = "hit"`).
//!
//! Never cached: sampled requests without a seed, answers cut by the safety layer or
//! cancelled, and requests whose input the safety layer redacted or pseudonymised (the
//! caller's own PII is restored into such an answer, so it must not reach anyone else).
//!
//! Two backends: [`MemoryCache`] (in-process LRU with a TTL, the embedded default) and
//! [`RedisCache`] (shared by a fleet; entries expire in Redis).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::lora::AdapterSet;
use crate::model::{hex, Token};
use crate::sampling::GenerateOptions;
use crate::session::{Completion, FinishReason};

/// What a cache keeps of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedResponse {
    pub text: String,
    pub tokens: Vec<Token>,
    pub finish_reason: FinishReason,
}

/// Hit and miss counts of a cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResponseCacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Lookups or stores that failed (the request was then served by the model).
    pub errors: u64,
}

/// A response cache backend. Lookups run on the submitting thread, stores on the engine's
/// scheduler thread: both must be quick and must not panic.
pub trait ResponseCache: Send + Sync + fmt::Debug {
    /// The answer stored under `key`, if any and not expired.
    fn get(&self, key: &str) -> Result<Option<CachedResponse>>;
    /// Store `value` under `key`.
    fn put(&self, key: &str, value: &CachedResponse) -> Result<()>;
    /// The backend's name for metrics (`memory`, `redis`).
    fn backend(&self) -> &'static str;
    /// Counters since creation.
    fn stats(&self) -> ResponseCacheStats;
    /// The backend's name and its counters, as the C and Java surfaces report them.
    fn summary(&self) -> ResponseCacheSummary {
        ResponseCacheSummary {
            backend: self.backend(),
            stats: self.stats(),
        }
    }
}

/// [`ResponseCache::summary`]: serialises as `{"backend", "hits", "misses", "errors"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResponseCacheSummary {
    pub backend: &'static str,
    #[serde(flatten)]
    pub stats: ResponseCacheStats,
}

/// A cache and how an engine uses it.
#[derive(Debug, Clone)]
pub struct ResponseCacheConfig {
    pub cache: Arc<dyn ResponseCache>,
    /// Answer a request from another tenant's cached answer to the same request (default:
    /// each tenant has its own entries).
    pub share_across_tenants: bool,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn count<T>(&self, result: &Result<Option<T>>) {
        let counter = match result {
            Ok(Some(_)) => &self.hits,
            Ok(None) => &self.misses,
            Err(_) => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self) -> ResponseCacheStats {
        ResponseCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// The cache key of a request, or `None` when its answer is not deterministic.
pub(crate) fn request_key(
    model_sha256: &str,
    adapters: &AdapterSet,
    tokens: &[Token],
    options: &GenerateOptions,
    tenant: Option<&str>,
) -> Option<String> {
    let deterministic = options.greedy || options.temperature == 0.0 || options.seed.is_some();
    if !deterministic {
        return None;
    }
    let mut sampling = serde_json::to_value(options).ok()?;
    if let Some(map) = sampling.as_object_mut() {
        for metadata in ["request_id", "tenant", "route"] {
            map.remove(metadata);
        }
    }
    let adapters: Vec<(&str, f32)> = adapters
        .iter()
        .map(|(a, s)| (a.info().sha256.as_str(), *s))
        .collect();
    let key = serde_json::json!({
        "v": 1,
        "model": model_sha256,
        "adapters": adapters,
        "tokens": tokens,
        "sampling": sampling,
        "tenant": tenant,
    });
    Some(hex(&Sha256::digest(key.to_string().as_bytes())))
}

/// Whether a finished request's answer may be stored (see the module doc).
pub(crate) fn cacheable(completion: &Completion) -> bool {
    let finished = matches!(
        completion.finish_reason,
        FinishReason::Stop | FinishReason::Length
    );
    let redacted = completion
        .safety
        .as_ref()
        .is_some_and(|s| s.redactions.values().any(|&n| n > 0));
    finished && !redacted
}

impl From<&Completion> for CachedResponse {
    fn from(c: &Completion) -> Self {
        CachedResponse {
            text: c.text.clone(),
            tokens: c.tokens.clone(),
            finish_reason: c.finish_reason,
        }
    }
}

struct Entry {
    stored: Instant,
    value: CachedResponse,
}

/// In-process LRU cache with a time to live.
pub struct MemoryCache {
    entries: Mutex<lru::LruCache<String, Entry>>,
    ttl: Duration,
    counters: Counters,
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl MemoryCache {
    /// At most `capacity` answers, each kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Result<MemoryCache> {
        let capacity = NonZeroUsize::new(capacity).ok_or_else(|| {
            Error::InvalidArgument("the response cache needs a capacity of at least 1".into())
        })?;
        Ok(MemoryCache {
            entries: Mutex::new(lru::LruCache::new(capacity)),
            ttl,
            counters: Counters::default(),
        })
    }

    /// Answers held now (expired ones included until they are looked up or pushed out).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ResponseCache for MemoryCache {
    fn get(&self, key: &str) -> Result<Option<CachedResponse>> {
        let mut entries = self.lock();
        let found = match entries.get(key) {
            Some(e) if e.stored.elapsed() <= self.ttl => Some(e.value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        };
        let result = Ok(found);
        self.counters.count(&result);
        result
    }

    fn put(&self, key: &str, value: &CachedResponse) -> Result<()> {
        self.lock().put(
            key.to_owned(),
            Entry {
                stored: Instant::now(),
                value: value.clone(),
            },
        );
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    fn stats(&self) -> ResponseCacheStats {
        self.counters.stats()
    }
}

/// A cache in Redis, shared by every llmedge instance that names the same server and prefix.
/// Entries are JSON under `<prefix><key>` and expire in Redis after the TTL. A failed
/// connection is retried on the next call; meanwhile requests are served by the model.
pub struct RedisCache {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    counters: Counters,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish()
    }
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::Io {
        path: "redis".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl RedisCache {
    /// Connect to `url` (`redis://host:port/db`); fails when the server does not answer a
    /// PING within `timeout`.
    pub fn connect(
        url: &str,
        prefix: &str,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<RedisCache> {
        if ttl.as_secs() == 0 {
            return Err(Error::InvalidArgument(
                "the Redis response cache needs a TTL of at least one second".into(),
            ));
        }
        let client = redis::Client::open(url)
            .map_err(|e| Error::InvalidArgument(format!("invalid Redis URL {url:?}: {e}")))?;
        let cache = RedisCache {
            client,
            connection: Mutex::new(None),
            prefix: prefix.to_owned(),
            ttl,
            timeout,
            counters: Counters::default(),
        };
        cache.with_connection(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(cache)
    }

    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut slot = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(redis_error)?;
            c.set_read_timeout(Some(self.timeout))
                .map_err(redis_error)?;
            c.set_write_timeout(Some(self.timeout))
                .map_err(redis_error)?;
            *slot = Some(c);
        }
        let result = f(slot.as_mut().expect("connected above"));
        if result.is_err() {
            // Reconnect next time: the connection may be broken.
            *slot = None;
        }
        result.map_err(redis_error)
    }
}

impl ResponseCache for RedisCache {
    fn get(&self, key: &str) -> Result<Option<CachedResponse>> {
        let key = format!("{}{key}", self.prefix);
        let result = self
            .with_connection(|c| redis::cmd("GET").arg(&key).query::<Option<String>>(c))
            .map(|found| found.and_then(|json| serde_json::from_str(&json).ok()));
        self.counters.count(&result);
        result
    }

    fn put(&self, key: &str, value: &CachedResponse) -> Result<()> {
        let key = format!("{}{key}", self.prefix);
        let json = serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))?;
        let stored = self.with_connection(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(json)
                .arg("EX")
                .arg(self.ttl.as_secs())
                .query::<()>(c)
        });
        if stored.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    fn stats(&self) -> ResponseCacheStats {
        self.counters.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> CachedResponse {
        CachedResponse {
            text: text.into(),
            tokens: vec![1, 2],
            finish_reason: FinishReason::Stop,
        }
    }

    #[test]
    fn memory_cache_evicts_the_least_recently_used_and_expires_entries() {
        let cache = MemoryCache::new(2, Duration::from_secs(60)).unwrap();
        cache.put("a", &answer("A")).unwrap();
        cache.put("b", &answer("B")).unwrap();
        assert_eq!(cache.get("a").unwrap().unwrap().text, "A");
        cache.put("c", &answer("C")).unwrap();
        assert!(
            cache.get("b").unwrap().is_none(),
            "b was least recently used"
        );
        assert!(cache.get("a").unwrap().is_some());
        assert_eq!(
            cache.stats(),
            ResponseCacheStats {
                hits: 2,
                misses: 1,
                errors: 0
            }
        );
        let short = MemoryCache::new(4, Duration::from_millis(20)).unwrap();
        short.put("x", &answer("X")).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(short.get("x").unwrap().is_none());
        assert!(
            short.is_empty(),
            "an expired entry is dropped when looked up"
        );
        assert!(MemoryCache::new(0, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn keys_cover_what_changes_the_answer_and_skip_random_sampling() {
        let greedy = GenerateOptions::greedy();
        let key = |tokens: &[Token], o: &GenerateOptions, tenant| {
            request_key("m", &Vec::new(), tokens, o, tenant)
        };
        let base = key(&[1, 2, 3], &greedy, None).unwrap();
        assert_eq!(key(&[1, 2, 3], &greedy, None).unwrap(), base);
        assert_ne!(key(&[1, 2, 4], &greedy, None).unwrap(), base);
        assert_ne!(
            key(&[1, 2, 3], &greedy.clone().with_max_tokens(7), None).unwrap(),
            base
        );
        assert_ne!(key(&[1, 2, 3], &greedy, Some("ward-7")).unwrap(), base);
        assert_ne!(
            request_key("other", &Vec::new(), &[1, 2, 3], &greedy, None).unwrap(),
            base
        );
        let tagged = GenerateOptions {
            request_id: Some("r1".into()),
            route: Some("finance".into()),
            ..greedy.clone()
        };
        assert_eq!(key(&[1, 2, 3], &tagged, None).unwrap(), base);
        assert!(key(&[1], &GenerateOptions::default(), None).is_none());
        let seeded = GenerateOptions {
            seed: Some(3),
            ..GenerateOptions::default()
        };
        assert!(key(&[1], &seeded, None).is_some());
    }
}
