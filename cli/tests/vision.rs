//! `llmedge run --image` end to end on the tiny random VLM (models/cache/fixtures/vlm, from
//! `make fixtures`): the image reaches the model, DICOM flags apply, and each bad input
//! exits with its llmedge error code.

use std::path::Path;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/cache/fixtures/vlm")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make fixtures`",
        p.display()
    );
    p.to_string_lossy().into_owned()
}

fn run(extra: &[&str]) -> Output {
    let (model, mmproj) = (fixture("tiny-vlm.gguf"), fixture("tiny-vlm-mmproj.gguf"));
    let mut args = vec![
        "run", "--json", "--greedy", "-n", "12", "-t", "2", "--ctx", "512", "-m", &model,
        "--mmproj", &mmproj,
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_llmedge"))
        .args(&args)
        .env_remove("LLMEDGE_AUDIT_DIR")
        .output()
        .expect("run llmedge")
}

fn tokens(out: &Output) -> Vec<i64> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["vision"]["encoded"], 1, "{v}");
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

#[test]
fn images_and_dicom_flags_reach_the_model() {
    let png = tokens(&run(&[
        "--image",
        &fixture("pattern.png"),
        "Describe the image.",
    ]));
    // The same pixels as BMP: the same answer; another picture: another answer.
    let bmp = tokens(&run(&[
        "--image",
        &fixture("pattern.bmp"),
        "Describe the image.",
    ]));
    assert_eq!(png, bmp);
    let other = tokens(&run(&[
        "--image",
        &fixture("other.png"),
        "Describe the image.",
    ]));
    assert_ne!(png, other);
    let dicom = &fixture("ct_mono2.dcm");
    let file_window = tokens(&run(&["--image", dicom, "Report."]));
    let own_window = tokens(&run(&[
        "--image",
        dicom,
        "--dicom-window",
        "40,400",
        "Report.",
    ]));
    assert_ne!(file_window, own_window);
    let frame = tokens(&run(&[
        "--image",
        &fixture("multiframe.dcm"),
        "--dicom-frame",
        "2",
        "Report.",
    ]));
    assert!(!frame.is_empty());
}

#[test]
fn bad_vision_inputs_exit_with_their_codes() {
    let code = |out: Output| out.status.code().unwrap();
    let png = fixture("pattern.png");
    let no_mmproj = Command::new(env!("CARGO_BIN_EXE_llmedge"))
        .args([
            "run",
            "-m",
            &fixture("tiny-vlm.gguf"),
            "--image",
            &png,
            "-n",
            "4",
            "Hi",
        ])
        .output()
        .unwrap();
    assert_eq!(code(no_mmproj), 17, "no projector");
    let wrong = Command::new(env!("CARGO_BIN_EXE_llmedge"))
        .args([
            "run",
            "-m",
            &fixture("tiny-vlm.gguf"),
            "--mmproj",
            &fixture("mmproj-576.gguf"),
        ])
        .args(["--image", &png, "-n", "4", "Hi"])
        .output()
        .unwrap();
    assert_eq!(code(wrong), 17, "mismatched pair");
    assert_eq!(code(run(&["--image", &fixture("corrupt.png"), "Hi"])), 18);
    assert_eq!(code(run(&["--image", &fixture("bomb.png"), "Hi"])), 18);
    assert_eq!(code(run(&["--image", &fixture("jpeg2000.dcm"), "Hi"])), 19);
    assert_eq!(
        code(run(&["--image", &png, "--dicom-window", "40", "Hi"])),
        1
    );
}
