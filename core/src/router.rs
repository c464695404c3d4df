//! Routing requests between domain models and adapters.
//!
//! A route names a target (a model id, plus LoRA adapters by name and scale) and the rules
//! that select it. For each request the rules are tried in a fixed order, and the first
//! that matches wins:
//!
//! 1. **model name**: the request's `model` is a route's name or one of its `models` aliases;
//! 2. **tenant**: the caller's tenant is listed in a route's `tenants`;
//! 3. **keywords**: the request text contains one of a route's `keywords` (case-insensitive,
//!    whole text; routes in configuration order);
//! 4. **regex**: the request text matches a route's `regex`;
//! 5. **classifier**: a model answers which route fits, constrained to the route names;
//! 6. the **default** route.
//!
//! The decision (route, rule, target) goes into the response metadata and the audit record.
//!
//! `llmedge serve` routes every request. An embedding program (C, C++, Python, Java) builds a
//! [`Router`] from the same `[[routes]]` TOML ([`Router::from_toml_str`]) and, for the
//! classifier stage, a [`RouteClassifier`] on one of its models.

use std::path::Path;
use std::sync::Mutex;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::chat_template::ChatMessage;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::sampling::GenerateOptions;
use crate::server_config::{config_error, RouterSection};
use crate::session::{Session, SessionOptions};
use crate::structured_output::OutputConstraint;

/// A LoRA adapter a route applies, by the name it has in the model's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteAdapter {
    pub name: String,
    #[serde(default = "one")]
    pub scale: f32,
}

fn one() -> f32 {
    1.0
}

/// One route as configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    pub name: String,
    /// The model id requests on this route run on.
    pub model: String,
    /// Adapters applied on this route (none = the bare model).
    pub adapters: Vec<RouteAdapter>,
    /// Request `model` names that select this route (its own name always does).
    pub models: Vec<String>,
    /// Tenants whose requests take this route.
    pub tenants: Vec<String>,
    /// Words or phrases that select this route when the request text contains one.
    pub keywords: Vec<String>,
    /// A regular expression that selects this route when it matches the request text.
    pub regex: Option<String>,
    /// The route taken when no rule matches (exactly one route is the default, or the
    /// first route when none says so).
    pub default: bool,
}

/// The optional classifier stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The model id that classifies.
    pub model: String,
    /// The prompt; `{routes}` becomes the comma-separated route names and `{request}` the
    /// request text.
    #[serde(default = "default_classifier_prompt")]
    pub prompt: String,
    /// Routes the classifier may choose (default: every route).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Request text beyond this many chars is not shown to the classifier.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
}

fn default_classifier_prompt() -> String {
    "Classify the request into exactly one of these categories: {routes}.\n\
     Request: {request}\nCategory:"
        .into()
}

fn default_max_chars() -> usize {
    2000
}

/// Which rule chose the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "matched")]
pub enum RouteRule {
    Model(String),
    Tenant(String),
    Keyword(String),
    Regex(String),
    Classifier(String),
    Default,
}

/// Where a request goes, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteDecision {
    pub route: String,
    pub model: String,
    pub adapters: Vec<RouteAdapter>,
    #[serde(flatten)]
    pub rule: RouteRule,
}

/// What the router looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    /// The `model` the request named, if any.
    pub model: Option<&'a str>,
    pub tenant: &'a str,
    /// The request text: the prompt, or the last user message.
    pub text: &'a str,
}

/// A router file: the `[[routes]]` and `[router]` sections of a server configuration (so a
/// whole `llmedge serve` configuration is one too; its other sections are not read here).
#[derive(Debug, Clone, Default, Deserialize)]
struct RouterFile {
    #[serde(default)]
    routes: Vec<RouteConfig>,
    #[serde(default)]
    router: RouterSection,
}

/// The classifier stage's model: one greedy session whose answer is constrained to the route
/// names. Without safety or audit: the request's own record carries the decision. Requests
/// that reach the stage take turns on the session. `Send + Sync`.
pub struct RouteClassifier {
    session: Mutex<Session>,
}

impl std::fmt::Debug for RouteClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteClassifier").finish_non_exhaustive()
    }
}

impl RouteClassifier {
    /// A classifier on `model`, with a 2,048-token context (the prompt shows at most
    /// [`ClassifierConfig::max_chars`] of the request).
    pub fn new(model: &Model) -> Result<RouteClassifier> {
        let options = SessionOptions {
            n_ctx: Some(2048),
            safety: None,
            audit: None,
            ..SessionOptions::default()
        };
        Ok(RouteClassifier {
            session: Mutex::new(Session::new(model, options)?),
        })
    }

    /// The model's answer to `prompt`: one of `choices`.
    pub fn classify(&self, prompt: &str, choices: &[String]) -> Result<String> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let options = GenerateOptions::greedy()
            .with_max_tokens(16)
            .with_constraint(OutputConstraint::Choice(choices.to_vec()));
        Ok(session.chat(&[ChatMessage::user(prompt)], &options)?.text)
    }
}

struct Compiled {
    config: RouteConfig,
    regex: Option<Regex>,
}

/// The compiled routing rules.
pub struct Router {
    routes: Vec<Compiled>,
    default: usize,
    keywords: Option<(AhoCorasick, Vec<usize>)>,
    classifier: Option<ClassifierConfig>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.routes.iter().map(|r| r.config.name.as_str()).collect();
        f.debug_struct("Router").field("routes", &names).finish()
    }
}

fn bad(message: String) -> Error {
    Error::InvalidArgument(message)
}

impl Router {
    /// Compile `routes` (at least one) and the optional classifier.
    pub fn new(routes: Vec<RouteConfig>, classifier: Option<ClassifierConfig>) -> Result<Router> {
        if routes.is_empty() {
            return Err(bad("the router needs at least one route".into()));
        }
        let mut compiled = Vec::with_capacity(routes.len());
        for (i, route) in routes.into_iter().enumerate() {
            if route.name.is_empty() || route.model.is_empty() {
                return Err(bad(format!("route {} needs a name and a model", i + 1)));
            }
            if compiled
                .iter()
                .any(|c: &Compiled| c.config.name == route.name)
            {
                return Err(bad(format!("route {:?} is defined twice", route.name)));
            }
            let regex = match &route.regex {
                Some(pattern) => Some(
                    Regex::new(pattern)
                        .map_err(|e| bad(format!("route {:?}: invalid regex: {e}", route.name)))?,
                ),
                None => None,
            };
            compiled.push(Compiled {
                config: route,
                regex,
            });
        }
        let defaults: Vec<usize> = (0..compiled.len())
            .filter(|&i| compiled[i].config.default)
            .collect();
        let default = match defaults.as_slice() {
            [] => 0,
            [one] => *one,
            _ => return Err(bad("more than one route is marked default".into())),
        };
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (i, route) in compiled.iter().enumerate() {
            for keyword in route.config.keywords.iter().filter(|k| !k.is_empty()) {
                patterns.push(keyword.clone());
                owners.push(i);
            }
        }
        let keywords = if patterns.is_empty() {
            None
        } else {
            let automaton = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(&patterns)
                .map_err(|e| bad(format!("router keywords: {e}")))?;
            Some((automaton, owners))
        };
        if let Some(c) = &classifier {
            for name in &c.routes {
                if !compiled.iter().any(|r| r.config.name == *name) {
                    return Err(bad(format!("the classifier names unknown route {name:?}")));
                }
            }
        }
        Ok(Router {
            routes: compiled,
            default,
            keywords,
            classifier,
        })
    }

    /// Parse and compile a router file: `[[routes]]` tables and an optional
    /// `[router.classifier]` table, as in (and so also) a server configuration. Mistakes are
    /// [`Error::Config`] with their line.
    pub fn from_toml_str(text: &str) -> Result<Router> {
        Router::parse(text, Path::new("<router>"))
    }

    /// [`Router::from_toml_str`] on a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Router> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Router::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Router> {
        let file: RouterFile = toml::from_str(text)
            .map_err(|e| config_error(path, text, e.span().map(|s| s.start), e.message()))?;
        Router::new(file.routes, file.router.classifier).map_err(|e| match e {
            Error::InvalidArgument(reason) => config_error(path, text, None, reason),
            e => e,
        })
    }

    /// Route a request with `classifier` as the classifier stage's model. A router with a
    /// classifier stage needs one ([`Error::InvalidArgument`] when a request reaches the
    /// stage without it); a router without the stage ignores it.
    pub fn route_with(
        &self,
        query: &RouteQuery<'_>,
        classifier: Option<&RouteClassifier>,
    ) -> Result<RouteDecision> {
        self.route(query, |prompt, choices| match classifier {
            Some(c) => c.classify(prompt, choices),
            None => Err(Error::InvalidArgument(
                "this router has a classifier stage: give it a RouteClassifier".into(),
            )),
        })
    }

    /// The routes, in configuration order.
    pub fn routes(&self) -> impl Iterator<Item = &RouteConfig> {
        self.routes.iter().map(|r| &r.config)
    }

    /// The classifier stage, if configured.
    pub fn classifier(&self) -> Option<&ClassifierConfig> {
        self.classifier.as_ref()
    }

    /// The routes the classifier chooses from.
    pub fn classifier_choices(&self) -> Vec<String> {
        match &self.classifier {
            Some(c) if !c.routes.is_empty() => c.routes.clone(),
            _ => self.routes.iter().map(|r| r.config.name.clone()).collect(),
        }
    }

    /// The classifier's prompt for `text`.
    pub fn classifier_prompt(&self, text: &str) -> Option<String> {
        let c = self.classifier.as_ref()?;
        let text: String = text.chars().take(c.max_chars).collect();
        Some(
            c.prompt
                .replace("{routes}", &self.classifier_choices().join(", "))
                .replace("{request}", &text),
        )
    }

    /// Route a request. `classify(prompt, choices)` runs the classifier stage (when one is
    /// configured and no earlier rule matched) and returns one of `choices`.
    pub fn route(
        &self,
        query: &RouteQuery<'_>,
        classify: impl FnOnce(&str, &[String]) -> Result<String>,
    ) -> Result<RouteDecision> {
        let decide = |i: usize, rule: RouteRule| {
            let c = &self.routes[i].config;
            RouteDecision {
                route: c.name.clone(),
                model: c.model.clone(),
                adapters: c.adapters.clone(),
                rule,
            }
        };
        if let Some(name) = query.model {
            if let Some(i) = self
                .routes
                .iter()
                .position(|r| r.config.name == name || r.config.models.iter().any(|m| m == name))
            {
                return Ok(decide(i, RouteRule::Model(name.to_owned())));
            }
        }
        if let Some(i) = self
            .routes
            .iter()
            .position(|r| r.config.tenants.iter().any(|t| t == query.tenant))
        {
            return Ok(decide(i, RouteRule::Tenant(query.tenant.to_owned())));
        }
        if let Some((automaton, owners)) = &self.keywords {
            // The route listed first wins, whichever of its keywords comes first in the text.
            let hit = automaton
                .find_iter(query.text)
                .map(|m| (owners[m.pattern().as_usize()], m))
                .min_by_key(|(owner, m)| (*owner, m.start()));
            if let Some((i, m)) = hit {
                let word = query.text[m.start()..m.end()].to_owned();
                return Ok(decide(i, RouteRule::Keyword(word)));
            }
        }
        if let Some(i) = self
            .routes
            .iter()
            .position(|r| r.regex.as_ref().is_some_and(|re| re.is_match(query.text)))
        {
            let pattern = self.routes[i].config.regex.clone().unwrap_or_default();
            return Ok(decide(i, RouteRule::Regex(pattern)));
        }
        if let Some(prompt) = self.classifier_prompt(query.text) {
            let choices = self.classifier_choices();
            let answer = classify(&prompt, &choices)?;
            let name = answer.trim();
            if let Some(i) = self.routes.iter().position(|r| r.config.name == name) {
                return Ok(decide(i, RouteRule::Classifier(name.to_owned())));
            }
        }
        Ok(decide(self.default, RouteRule::Default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, model: &str) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            model: model.into(),
            ..RouteConfig::default()
        }
    }

    fn router(classifier: Option<ClassifierConfig>) -> Router {
        Router::new(
            vec![
                RouteConfig {
                    adapters: vec![RouteAdapter {
                        name: "finance".into(),
                        scale: 0.8,
                    }],
                    keywords: vec!["invoice".into(), "tax return".into()],
                    tenants: vec!["bank-1".into()],
                    ..route("finance", "base")
                },
                RouteConfig {
                    keywords: vec!["patient".into(), "dosage".into()],
                    regex: Some(r"\bICD-?10\b".into()),
                    models: vec!["medical-v2".into()],
                    ..route("medical", "medical-merged")
                },
                RouteConfig {
                    default: true,
                    ..route("general", "base")
                },
            ],
            classifier,
        )
        .unwrap()
    }

    fn ask(r: &Router, model: Option<&str>, tenant: &str, text: &str) -> RouteDecision {
        r.route(
            &RouteQuery {
                model,
                tenant,
                text,
            },
            |_, _| panic!("no classifier configured"),
        )
        .unwrap()
    }

    #[test]
    fn router_files_parse_and_report_mistakes_by_line() {
        let r = Router::from_toml_str(
            "[[routes]]\nname = \"finance\"\nmodel = \"base\"\nkeywords = [\"invoice\"]\n\
             adapters = [{ name = \"fin\", scale = 0.5 }]\n\
             [[routes]]\nname = \"general\"\nmodel = \"base\"\ndefault = true\n\
             [router.classifier]\nmodel = \"base\"\nroutes = [\"finance\", \"general\"]\n",
        )
        .unwrap();
        assert_eq!(r.routes().count(), 2);
        assert_eq!(r.classifier_choices(), ["finance", "general"]);
        let query = RouteQuery {
            model: None,
            tenant: "",
            text: "an invoice",
        };
        let d = r.route_with(&query, None).unwrap();
        assert_eq!((d.route.as_str(), d.adapters[0].scale), ("finance", 0.5));
        // Reaching the classifier stage without a classifier is the caller's mistake.
        let query = RouteQuery {
            text: "hello",
            ..query
        };
        let e = r.route_with(&query, None).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{e}");
        // A whole `llmedge serve` configuration is a router file too.
        let serve = Router::from_toml_str(
            "[server]\nbind = \"127.0.0.1:8080\"\n[[models]]\nid = \"base\"\n\
             [[routes]]\nname = \"r\"\nmodel = \"base\"\n[router]\nstrict_model_names = true\n",
        )
        .unwrap();
        assert_eq!(serve.routes().count(), 1);
        // A router without the stage does not need one.
        let plain = Router::from_toml_str("[[routes]]\nname = \"a\"\nmodel = \"m\"\n").unwrap();
        assert_eq!(
            plain.route_with(&query, None).unwrap().rule,
            RouteRule::Default
        );

        for (text, line, reason) in [
            (
                "[[routes]]\nname = \"a\"\nmodel = \"m\"\ncolour = 1\n",
                4,
                "colour",
            ),
            (
                "[[routes]]\nname = \"a\"\nmodel = \"m\"\nregex = \"(\"\n",
                0,
                "regex",
            ),
            ("", 0, "at least one route"),
            ("[[routes]]\nname = \"a\"\n", 0, "needs a name and a model"),
        ] {
            match Router::from_toml_str(text) {
                Err(Error::Config {
                    line: l, reason: r, ..
                }) => {
                    assert_eq!(l, line, "{text:?}: {r}");
                    assert!(r.contains(reason), "{text:?}: {r}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn rules_apply_in_order_model_tenant_keyword_regex_default() {
        let r = router(None);
        let d = ask(&r, Some("medical-v2"), "bank-1", "invoice");
        assert_eq!(
            (d.route.as_str(), d.model.as_str()),
            ("medical", "medical-merged")
        );
        assert_eq!(d.rule, RouteRule::Model("medical-v2".into()));
        let d = ask(&r, Some("gpt-4o"), "bank-1", "patient notes");
        assert_eq!(d.route, "finance");
        assert_eq!(d.rule, RouteRule::Tenant("bank-1".into()));
        assert_eq!(d.adapters[0].scale, 0.8);
        let d = ask(&r, None, "ward-7", "The PATIENT's dosage");
        assert_eq!(d.rule, RouteRule::Keyword("PATIENT".into()));
        // Both routes' keywords occur: the route listed first wins.
        let d = ask(&r, None, "x", "patient invoice");
        assert_eq!(d.route, "finance");
        let d = ask(&r, None, "x", "code ICD10 for asthma");
        assert_eq!(d.route, "medical");
        assert!(matches!(d.rule, RouteRule::Regex(_)));
        let d = ask(&r, None, "x", "hello there");
        assert_eq!(
            (d.route.as_str(), &d.rule),
            ("general", &RouteRule::Default)
        );
    }

    #[test]
    fn the_classifier_runs_only_when_no_rule_matched_and_must_name_a_route() {
        let r = router(Some(ClassifierConfig {
            model: "base".into(),
            prompt: default_classifier_prompt(),
            routes: vec!["finance".into(), "medical".into()],
            max_chars: 10,
        }));
        let query = RouteQuery {
            model: None,
            tenant: "x",
            text: "my blood pressure readings are high",
        };
        let d = r
            .route(&query, |prompt, choices| {
                assert!(prompt.contains("finance, medical"), "{prompt}");
                assert!(prompt.contains("my blood p") && !prompt.contains("readings"));
                assert_eq!(choices, ["finance", "medical"]);
                Ok(" medical".into())
            })
            .unwrap();
        assert_eq!(d.rule, RouteRule::Classifier("medical".into()));
        let d = r.route(&query, |_, _| Ok("nonsense".into())).unwrap();
        assert_eq!(d.rule, RouteRule::Default);
        let keyword = RouteQuery {
            text: "invoice",
            ..query
        };
        let d = r.route(&keyword, |_, _| panic!("not needed")).unwrap();
        assert_eq!(d.route, "finance");
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(Router::new(vec![], None).is_err());
        assert!(Router::new(vec![route("a", "m"), route("a", "m")], None).is_err());
        let bad_regex = RouteConfig {
            regex: Some("(".into()),
            ..route("a", "m")
        };
        let e = Router::new(vec![bad_regex], None).unwrap_err();
        assert!(e.to_string().contains("invalid regex"), "{e}");
        let two_defaults = vec![
            RouteConfig {
                default: true,
                ..route("a", "m")
            },
            RouteConfig {
                default: true,
                ..route("b", "m")
            },
        ];
        assert!(Router::new(two_defaults, None).is_err());
        let unknown = ClassifierConfig {
            model: "m".into(),
            prompt: String::new(),
            routes: vec!["zzz".into()],
            max_chars: 5,
        };
        assert!(Router::new(vec![route("a", "m")], Some(unknown)).is_err());
    }
}
