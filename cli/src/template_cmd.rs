//! `llmedge template`: list, show and run prompt templates (the built-ins plus `--dir`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use llmedge::prompt_template::Variables;
use llmedge::{Error, TemplateLibrary};

use crate::{completion_json, ModelArgs, SamplingArgs};

#[derive(Subcommand)]
pub enum TemplateCommand {
    /// List the templates: name and description.
    List(LibraryArgs),
    /// Print one template (TOML-like text, or JSON with --json).
    Show {
        name: String,
        #[command(flatten)]
        library: LibraryArgs,
    },
    /// Fill a template and answer it. With --request, the model first fills the variables
    /// from the request (the two-stage dynamic flow); otherwise give them with --var.
    Run(Box<RunTemplateArgs>),
}

#[derive(Args)]
pub struct LibraryArgs {
    /// Also load every *.toml template in this folder (replacing same-named built-ins).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct RunTemplateArgs {
    name: String,
    /// A variable, as name=value (repeatable).
    #[arg(long = "var", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Let the model fill the variables from this request first (dynamic flow).
    #[arg(long, conflicts_with = "vars")]
    request: Option<String>,
    #[command(flatten)]
    library: LibraryArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
}

fn parse_var(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {arg:?}"))
}

impl LibraryArgs {
    fn load(&self) -> Result<TemplateLibrary, Error> {
        let mut lib = TemplateLibrary::builtin();
        if let Some(dir) = &self.dir {
            lib.add_dir(dir)?;
        }
        Ok(lib)
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))
}

pub fn run(cmd: &TemplateCommand, json: bool) -> Result<(), Error> {
    match cmd {
        TemplateCommand::List(library) => {
            let lib = library.load()?;
            let rows: Vec<_> = lib
                .names()
                .into_iter()
                .map(|n| {
                    let t = lib.get(&n).expect("listed names exist");
                    (n, t.description.clone())
                })
                .collect();
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(n, d)| serde_json::json!({"name": n, "description": d}))
                    .collect();
                println!("{}", to_json(&list)?);
            } else {
                for (name, description) in rows {
                    println!("{name:<28} {description}");
                }
            }
            Ok(())
        }
        TemplateCommand::Show { name, library } => {
            let lib = library.load()?;
            let t = lib.get(name)?;
            if json {
                println!("{}", to_json(t)?);
            } else {
                println!("name:        {}", t.name);
                println!("description: {}", t.description);
                println!("variables:   {}", t.variables().join(", "));
                if let Some(system) = &t.system {
                    println!("system:\n{system}");
                }
                println!("template:\n{}", t.template);
                if let Some(schema) = &t.output_schema {
                    println!("output schema:\n{}", to_json(schema)?);
                }
            }
            Ok(())
        }
        TemplateCommand::Run(args) => run_template(args, json),
    }
}

fn run_template(args: &RunTemplateArgs, json: bool) -> Result<(), Error> {
    let lib = args.library.load()?;
    let template = lib.get(&args.name)?;
    let (_model, mut session) = args.model.open(json)?;
    let options = args.sampling.options()?;
    let output = match &args.request {
        Some(request) => {
            let flow = session.run_dynamic(template, request, &options)?;
            if json {
                let mut out =
                    serde_json::to_value(&flow).map_err(|e| Error::Internal(e.to_string()))?;
                out["answer"]["completion"] = completion_json(&flow.answer.completion);
                println!("{out}");
                return Ok(());
            }
            eprintln!(
                "stage 1 variables: {}",
                serde_json::Value::Object(flow.variables.clone())
            );
            flow.answer
        }
        None => {
            let vars: Variables = args
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            session.run_template(template, &vars, &options)?
        }
    };
    if json {
        let mut out = serde_json::to_value(&output).map_err(|e| Error::Internal(e.to_string()))?;
        out["completion"] = completion_json(&output.completion);
        println!("{out}");
        return Ok(());
    }
    println!("{}", output.completion.text);
    if let Some(answer) = &output.answer {
        println!("\nanswer: {answer}");
    }
    Ok(())
}
