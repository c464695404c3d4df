//! API keys (compared in constant time, see `ApiKeys`) and per-key rate limits.

use std::collections::HashMap;
use std::num::NonZeroU32;

use axum::http::{HeaderMap, StatusCode};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use llmedge::server_config::{ApiKeyConfig, ApiKeys};

use super::openai::ApiError;

/// Who a request is from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
}

pub struct Auth {
    keys: ApiKeys,
    /// Rate limiters by key hash.
    limiters: HashMap<String, DefaultDirectRateLimiter>,
}

impl Auth {
    pub fn new(configs: &[ApiKeyConfig]) -> Auth {
        let keys = ApiKeys::new(configs);
        let mut limiters = HashMap::new();
        for config in keys.configs() {
            if let Some(rpm) = NonZeroU32::new(config.requests_per_minute) {
                let hash = config.key_sha256.clone().unwrap_or_default();
                limiters.insert(hash, RateLimiter::direct(Quota::per_minute(rpm)));
            }
        }
        Auth { keys, limiters }
    }

    /// The caller of a request with these headers: 401 without a valid key (when keys are
    /// configured), 429 past the key's rate limit.
    pub fn check(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.keys.is_open() {
            return Ok(Caller {
                tenant: "local".into(),
            });
        }
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        let Some(key) = self.keys.authenticate(presented) else {
            let mut e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "a valid API key is required (Authorization: Bearer <key>)",
            );
            e.code = Some("invalid_api_key".into());
            return Err(e);
        };
        let hash = key.key_sha256.as_deref().unwrap_or_default();
        if let Some(limiter) = self.limiters.get(hash) {
            if limiter.check().is_err() {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_exceeded",
                    format!(
                        "rate limit of {} requests per minute exceeded",
                        key.requests_per_minute
                    ),
                );
                e.code = Some("rate_limit_exceeded".into());
                return Err(e);
            }
        }
        Ok(Caller {
            tenant: key.tenant.clone(),
        })
    }
}
