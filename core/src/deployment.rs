//! A running server's models, engines, router, response cache and audit log, built from a
//! [`ServerConfig`]. The HTTP layer (`llmedge serve`) only translates requests into
//! [`Deployment::route`] and [`Deployment::submit`] calls.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditLog, Surface, TokenCounts};
use crate::chat_template::ChatTemplate;
use crate::error::{Error, Result};
use crate::lora::{AdapterSet, LoraAdapter};
use crate::model::{Model, ModelOptions};
use crate::model_fetch::default_model_path;
use crate::request_guard::{default_safety, Checked, GuardConfig, RequestGuard};
use crate::response_cache::{MemoryCache, RedisCache, ResponseCache, ResponseCacheConfig};
use crate::router::{RouteClassifier, RouteDecision, RouteQuery, Router};
use crate::safety::{Safety, SafetyPolicy};
use crate::sampling::GenerateOptions;
use crate::server_config::{CacheBackend, ServerConfig};
use crate::serving_engine::{Engine, EngineOptions, EngineRequest, RequestHandle, RequestSink};
use crate::session::SessionOptions;

/// One model a deployment serves.
pub struct ServedModel {
    pub id: String,
    pub model: Model,
    pub engine: Engine,
    /// The adapters loaded into the model, by configured name.
    pub adapters: Vec<(String, LoraAdapter)>,
}

/// Everything a server runs. `Send + Sync`.
pub struct Deployment {
    models: Vec<ServedModel>,
    router: Router,
    strict_model_names: bool,
    classifier: Option<RouteClassifier>,
    cache: Option<Arc<dyn ResponseCache>>,
    audit: Option<Arc<AuditLog>>,
    safety: Option<Safety>,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.models.iter().map(|m| m.id.as_str()).collect();
        f.debug_struct("Deployment")
            .field("models", &ids)
            .field("router", &self.router)
            .finish()
    }
}

impl Deployment {
    /// Open the audit log and the cache, load every model and adapter, and start one engine
    /// per model. `progress` hears what is being done.
    pub fn start(
        config: &ServerConfig,
        surface: Surface,
        mut progress: impl FnMut(&str),
    ) -> Result<Deployment> {
        config.check().map_err(|reason| Error::Config {
            path: "<config>".into(),
            line: 0,
            reason,
        })?;
        let audit = match config.audit_config() {
            Some(c) => Some(AuditLog::open_shared(c)?),
            None => None,
        };
        let safety = match (&config.safety.enabled, &config.safety.policy) {
            (false, _) => None,
            (true, Some(path)) => Some(Safety::new(SafetyPolicy::from_file(path)?)?),
            (true, None) => Some(default_safety()),
        };
        let cache: Option<Arc<dyn ResponseCache>> = match config.cache.backend {
            CacheBackend::None => None,
            CacheBackend::Memory => Some(Arc::new(MemoryCache::new(
                config.cache.capacity,
                Duration::from_secs(config.cache.ttl_secs),
            )?)),
            CacheBackend::Redis => {
                progress(&format!("connecting to {}", config.cache.redis_url));
                Some(Arc::new(RedisCache::connect(
                    &config.cache.redis_url,
                    &config.cache.redis_prefix,
                    Duration::from_secs(config.cache.ttl_secs),
                    Duration::from_millis(config.cache.redis_timeout_ms),
                )?))
            }
        };
        let timeout = Duration::from_secs(config.server.request_timeout_secs);
        let mut models = Vec::with_capacity(config.models.len());
        for m in &config.models {
            let path = if m.path.as_os_str().is_empty() {
                default_model_path(&mut |_| {})?
            } else {
                m.path.clone()
            };
            progress(&format!("loading model {} from {}", m.id, path.display()));
            let mut options = ModelOptions {
                n_gpu_layers: m.n_gpu_layers,
                compute_sha256: true,
                max_prompt_tokens: m.max_prompt_tokens,
                ..ModelOptions::default()
            };
            if let Some(t) = m.threads {
                options.threads = t;
            }
            let model = Model::load(&path, options)?;
            if let Some(mmproj) = &m.mmproj {
                progress(&format!(
                    "loading vision projector of {} from {}",
                    m.id,
                    mmproj.display()
                ));
                model.load_mmproj(mmproj)?;
            }
            let mut adapters = Vec::with_capacity(m.adapters.len());
            for a in &m.adapters {
                progress(&format!("loading adapter {} of {}", a.name, m.id));
                adapters.push((a.name.clone(), model.load_lora(&a.path)?));
            }
            let chat_template = match &m.chat_template {
                Some(source) => Some(ChatTemplate::parse(source)?),
                None => None,
            };
            let engine = Engine::new(
                &model,
                EngineOptions {
                    session: SessionOptions {
                        n_ctx: m.n_ctx,
                        n_batch: m.n_batch,
                        chat_template,
                        safety: safety.clone(),
                        audit: audit.clone(),
                        surface,
                        ..SessionOptions::default()
                    },
                    slots: m.slots,
                    max_queue: m.max_queue,
                    timeout: Some(timeout),
                    prefix_cache_bytes: m.prefix_cache_mb << 20,
                    response_cache: cache.clone().map(|cache| ResponseCacheConfig {
                        cache,
                        share_across_tenants: config.cache.share_across_tenants,
                    }),
                    ..EngineOptions::default()
                },
            )?;
            models.push(ServedModel {
                id: m.id.clone(),
                model,
                engine,
                adapters,
            });
        }
        let router = Router::new(routes_of(config), config.router.classifier.clone())?;
        let classifier = match &config.router.classifier {
            Some(c) => Some(RouteClassifier::new(
                &models
                    .iter()
                    .find(|m| m.id == c.model)
                    .expect("checked by ServerConfig::check")
                    .model,
            )?),
            None => None,
        };
        Ok(Deployment {
            models,
            router,
            strict_model_names: config.router.strict_model_names,
            classifier,
            cache,
            audit,
            safety,
        })
    }

    /// The served models, in configuration order.
    pub fn models(&self) -> &[ServedModel] {
        &self.models
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The response cache, if one is configured.
    pub fn cache(&self) -> Option<&Arc<dyn ResponseCache>> {
        self.cache.as_ref()
    }

    /// The audit log, if one is configured.
    pub fn audit(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// The safety layer, if on.
    pub fn safety(&self) -> Option<&Safety> {
        self.safety.as_ref()
    }

    /// The model with this id.
    pub fn model(&self, id: &str) -> Option<&ServedModel> {
        self.models.iter().find(|m| m.id == id)
    }

    /// Whether `name` is a model id, a route name or a route alias.
    pub fn knows_model_name(&self, name: &str) -> bool {
        self.model(name).is_some()
            || self
                .router
                .routes()
                .any(|r| r.name == name || r.models.iter().any(|m| m == name))
    }

    /// Decide where a request goes. A request naming an unknown model is
    /// [`Error::InvalidArgument`] when `strict_model_names` is set.
    pub fn route(&self, model: Option<&str>, tenant: &str, text: &str) -> Result<RouteDecision> {
        if let Some(name) = model {
            if self.strict_model_names && !self.knows_model_name(name) {
                return Err(Error::InvalidArgument(format!("unknown model {name:?}")));
            }
        }
        let query = RouteQuery {
            model,
            tenant,
            text,
        };
        self.router.route_with(&query, self.classifier.as_ref())
    }

    /// Submit a routed request: it runs on the decision's model with its adapters, and the
    /// route is recorded in the audit log.
    pub fn submit(
        &self,
        decision: &RouteDecision,
        mut request: EngineRequest,
        sink: Box<dyn RequestSink>,
    ) -> Result<RequestHandle> {
        let served = self.model(&decision.model).ok_or_else(|| {
            Error::Internal(format!("route {} names no served model", decision.route))
        })?;
        let mut adapters: AdapterSet = Vec::with_capacity(decision.adapters.len());
        for a in &decision.adapters {
            let (_, adapter) = served
                .adapters
                .iter()
                .find(|(name, _)| *name == a.name)
                .ok_or_else(|| Error::Internal(format!("adapter {} is not loaded", a.name)))?;
            adapters.push((adapter.clone(), a.scale));
        }
        request.options.adapters = Some(adapters);
        request.options.route = Some(decision.route.clone());
        served.engine.submit(request, sink)
    }

    /// Embed `texts` with model `model_id` after the input check (blocked text is
    /// [`Error::SafetyBlocked`]; PII is redacted before embedding, so vectors never encode it),
    /// with one audit record per text (`finish_reason` `embedding`).
    pub fn embed(
        &self,
        model_id: &str,
        texts: &[String],
        tenant: &str,
        route: &str,
        surface: Surface,
    ) -> Result<Vec<(Vec<f32>, u32)>> {
        let served = self
            .model(model_id)
            .ok_or_else(|| Error::Internal(format!("no served model {model_id}")))?;
        let config = GuardConfig {
            safety: self.safety.clone(),
            audit: self.audit.clone(),
            tenant: tenant.to_owned(),
            surface,
        };
        let options = GenerateOptions {
            route: Some(route.to_owned()),
            ..GenerateOptions::default()
        };
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let mut guard = RequestGuard::begin(&config, &options);
            let text = match guard.check_prompt(text)? {
                Checked::Allowed(text) => text,
                Checked::Refused(message) => {
                    guard.audit(&served.model, "", TokenCounts::default(), "content_filter")?;
                    return Err(Error::SafetyBlocked {
                        category: "input".into(),
                        message,
                    });
                }
            };
            let n_tokens = served.model.tokenize(&text, true, false).len() as u32;
            let counts = TokenCounts {
                prompt: u64::from(n_tokens),
                completion: 0,
            };
            match served.model.embed(&text) {
                Ok(vector) => {
                    guard.audit(&served.model, "", counts, "embedding")?;
                    out.push((vector, n_tokens));
                }
                Err(e) => {
                    let reason = format!("error:{}", e.code().name());
                    guard.audit(&served.model, "", counts, &reason)?;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Stop every engine: draining (finish what runs and waits) or cancelling.
    pub fn shutdown(&self, drain: bool) {
        for m in &self.models {
            m.engine.shutdown(drain);
        }
        if let Some(audit) = &self.audit {
            if let Err(e) = audit.flush() {
                tracing::error!("flushing the audit log: {e}");
            }
        }
    }
}

/// The configured routes, or one route per model (named after it) when none are configured;
/// a model without a route of its own name gets one, so `"model": "<id>"` always works.
fn routes_of(config: &ServerConfig) -> Vec<crate::router::RouteConfig> {
    let mut routes = config.routes.clone();
    let has_default = routes.iter().any(|r| r.default);
    for (i, m) in config.models.iter().enumerate() {
        if !routes.iter().any(|r| r.name == m.id) {
            routes.push(crate::router::RouteConfig {
                name: m.id.clone(),
                model: m.id.clone(),
                default: !has_default && config.routes.is_empty() && i == 0,
                ..Default::default()
            });
        }
    }
    if !routes.iter().any(|r| r.default) {
        // The first configured route is the default (Router's rule); keep it explicit.
        routes[0].default = true;
    }
    routes
}
