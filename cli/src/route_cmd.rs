//! `llmedge route ROUTES.toml TEXT`: where a request would go under a router file (the
//! `[[routes]]` of a server configuration, optional `[router.classifier]`), so operators can check
//! their rules before serving. The classifier stage runs on `--classifier-model` (default:
//! the default model) only when a request reaches it.

use std::path::PathBuf;

use clap::Args;
use llmedge::router::{RouteClassifier, RouteQuery, RouteRule, Router};
use llmedge::{Error, ModelOptions};

use crate::progress;

#[derive(Args)]
pub struct RouteArgs {
    /// The router file (TOML: `[[routes]]` tables and an optional `[router.classifier]`).
    routes: PathBuf,
    /// The request text (the prompt, or the last user message).
    text: String,
    /// The model name the request asks for.
    #[arg(long)]
    model: Option<String>,
    /// The caller's tenant.
    #[arg(long, default_value = "")]
    tenant: String,
    /// GGUF model for the classifier stage (default: the default model).
    #[arg(long)]
    classifier_model: Option<PathBuf>,
}

pub fn run(args: &RouteArgs, json: bool) -> Result<(), Error> {
    let router = Router::from_file(&args.routes)?;
    let query = RouteQuery {
        model: args.model.as_deref(),
        tenant: &args.tenant,
        text: &args.text,
    };
    // The rules before the classifier decide without a model: load one only when a request
    // reaches that stage.
    let decision = router.route(&query, |prompt, choices| {
        let path = match &args.classifier_model {
            Some(p) => p.clone(),
            None => progress::fetch_default(json)?,
        };
        let model = progress::load(&path, ModelOptions::default(), json)?;
        RouteClassifier::new(&model)?.classify(prompt, choices)
    })?;
    if json {
        let line = serde_json::to_string(&decision).map_err(|e| Error::Internal(e.to_string()))?;
        println!("{line}");
        return Ok(());
    }
    let why = match &decision.rule {
        RouteRule::Model(m) => format!("model name {m:?}"),
        RouteRule::Tenant(t) => format!("tenant {t:?}"),
        RouteRule::Keyword(k) => format!("keyword {k:?}"),
        RouteRule::Regex(r) => format!("regex {r:?}"),
        RouteRule::Classifier(c) => format!("classifier answered {c:?}"),
        RouteRule::Default => "default route".into(),
    };
    let adapters: Vec<String> = decision
        .adapters
        .iter()
        .map(|a| format!("{}:{}", a.name, a.scale))
        .collect();
    println!(
        "route {} → model {}{} ({why})",
        decision.route,
        decision.model,
        if adapters.is_empty() {
            String::new()
        } else {
            format!(" + {}", adapters.join(", "))
        }
    );
    Ok(())
}
