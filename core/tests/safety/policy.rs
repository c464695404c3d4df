//! Policy parsing: defaults, relative lexicon files, errors that name file and line.

use llmedge::safety::{PiiAction, Safety, SafetyPolicy};
use llmedge::{Error, ErrorCode};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("llmedge-safety-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn policy_line(e: Error) -> (String, usize) {
    assert_eq!(e.code(), ErrorCode::Policy, "{e}");
    match e {
        Error::Policy { path, line, .. } => (path.display().to_string(), line),
        _ => unreachable!(),
    }
}

#[test]
fn default_policy_is_on() {
    let p = SafetyPolicy::default();
    assert!(p.enabled && p.lexicon.enabled && p.pii.enabled);
    assert_eq!(p.pii.input_action, PiiAction::Pseudonymize);
    assert_eq!(p.pii.output_action, PiiAction::Mask);
    assert_eq!(p.refusal_message, "内容违反安全策略");
    assert!(!p.guard.is_enabled());
    let s = Safety::new(p).unwrap();
    assert!(s.check_input("how to make a bomb").verdict.is_blocked());
}

#[test]
fn relative_lexicon_files_load() {
    let d = tmpdir("rel");
    std::fs::create_dir_all(d.join("lex")).unwrap();
    write(
        &d,
        "lex/site.toml",
        "[[category]]\nid = \"site\"\nblock = [\"机密项目\"]\n",
    );
    let p = write(
        &d,
        "policy.toml",
        "[lexicon]\nfiles = [\"lex/site.toml\"]\n",
    );
    let s = Safety::new(SafetyPolicy::from_file(&p).unwrap()).unwrap();
    assert!(s.check_input("说说机 密 项 目").verdict.is_blocked());
}

#[test]
fn errors_name_file_and_line() {
    let d = tmpdir("err");
    let p = write(
        &d,
        "bad.toml",
        "enabled = true\n\n[pii]\ninput_action = \"shred\"\n",
    );
    let (path, line) = policy_line(SafetyPolicy::from_file(&p).unwrap_err());
    assert!(path.ends_with("bad.toml"));
    assert_eq!(line, 4);

    let p = write(
        &d,
        "typo.toml",
        "[lexicon]\nenabled = true\ninptu = false\n",
    );
    assert_eq!(policy_line(SafetyPolicy::from_file(&p).unwrap_err()).1, 3);

    let p = write(&d, "syntax.toml", "a = 1\nb = \n");
    assert_eq!(policy_line(SafetyPolicy::from_file(&p).unwrap_err()).1, 2);

    let p = write(
        &d,
        "regex.toml",
        "[pii]\n\nmedical_record_patterns = ['(unclosed']\n",
    );
    assert_eq!(policy_line(SafetyPolicy::from_file(&p).unwrap_err()).1, 3);

    let p = write(&d, "thr.toml", "[guard]\nthreshold = 1.5\n");
    assert_eq!(policy_line(SafetyPolicy::from_file(&p).unwrap_err()).1, 2);

    let p = write(
        &d,
        "missing.toml",
        "[lexicon]\nfiles = [\n  \"nope.toml\",\n]\n",
    );
    assert_eq!(policy_line(SafetyPolicy::from_file(&p).unwrap_err()).1, 3);

    // A bad lexicon file is reported against the lexicon file itself.
    write(
        &d,
        "badlex.toml",
        "[[category]]\nid = \"x\"\nblock = [\"ok\", \" ,. \"]\n",
    );
    let p = write(&d, "uses.toml", "[lexicon]\nfiles = [\"badlex.toml\"]\n");
    let err = Safety::new(SafetyPolicy::from_file(&p).unwrap()).unwrap_err();
    let (path, line) = policy_line(err);
    assert!(path.ends_with("badlex.toml"), "{path}");
    assert_eq!(line, 3);
}

#[test]
fn embedded_default_equals_code_defaults() {
    assert_eq!(
        SafetyPolicy::default(),
        SafetyPolicy::from_toml_str("").unwrap()
    );
}
