//! Vision: image decoding against pixels computed independently (numpy, in the fixture
//! script), DICOM windowing against the standard's formula, the tiny random VLM's greedy
//! tokens against a reference loop written directly on llama-cpp-2's mtmd helpers
//! (`examples/vlm_reference.rs`), the error of every bad input, embedding reuse, and that
//! DICOM patient data reaches neither the prompt nor the audit log.
//!
//! Needs `make fixtures` (models/cache/fixtures/vlm, written by models/vlm_fixtures.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use llmedge::audit::{AuditConfig, AuditLog};
use llmedge::{
    ChatMessage, ErrorCode, GenerateOptions, Image, ImageOptions, Model, ModelOptions, Prompt,
    Session, SessionOptions, Window, MEDIA_MARKER,
};

const N_PREDICT: usize = 24;
const QUESTION: &str = "Describe the image.";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    let p = root().join("models/cache/fixtures/vlm").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make fixtures`",
        p.display()
    );
    p
}

/// The RGB8 pixels the fixture script says `name` decodes to, and their size.
fn expected(name: &str) -> (u32, u32, Vec<u8>) {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("fixtures.json")).unwrap()).unwrap();
    let m = &meta["images"][name];
    let (w, h) = (
        m["width"].as_u64().unwrap() as u32,
        m["height"].as_u64().unwrap() as u32,
    );
    let rgb = std::fs::read(fixture(&format!("{name}.rgb"))).unwrap();
    assert_eq!(rgb.len(), (w * h * 3) as usize);
    (w, h, rgb)
}

fn assert_pixels(image: &Image, name: &str, tolerance: u8) {
    let (w, h, rgb) = expected(name);
    assert_eq!((image.width(), image.height()), (w, h), "{name}: size");
    let worst = image
        .rgb()
        .iter()
        .zip(&rgb)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(
        worst <= tolerance,
        "{name}: a channel differs by {worst} (allowed {tolerance})"
    );
}

fn vlm() -> Model {
    let model = Model::load(
        fixture("tiny-vlm.gguf"),
        ModelOptions {
            threads: 2,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    model.load_mmproj(fixture("tiny-vlm-mmproj.gguf")).unwrap();
    model
}

fn session(model: &Model) -> Session {
    Session::new(
        model,
        SessionOptions {
            n_ctx: Some(1024),
            n_batch: Some(512),
            safety: None,
            ..SessionOptions::default()
        },
    )
    .unwrap()
}

fn chatml(question: &str) -> String {
    format!("<|im_start|>user\n{MEDIA_MARKER}{question}<|im_end|>\n<|im_start|>assistant\n")
}

/// The reference loop's greedy tokens for `prompt` and raw pixels `name.rgb`.
fn reference_tokens(prompt: &str, image_arg: &str) -> Vec<i32> {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/vlm_reference");
    assert!(
        bin.exists(),
        "{} missing: run `cargo test` (it builds examples)",
        bin.display()
    );
    let out = Command::new(bin)
        .arg(fixture("tiny-vlm.gguf"))
        .arg(fixture("tiny-vlm-mmproj.gguf"))
        .arg(N_PREDICT.to_string())
        .arg(prompt)
        .arg(image_arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap() as i32)
        .collect()
}

fn rgb_arg(name: &str) -> String {
    let (w, h, _) = expected(name);
    format!("{w}x{h}:{}", fixture(&format!("{name}.rgb")).display())
}

fn greedy() -> GenerateOptions {
    GenerateOptions::greedy().with_max_tokens(N_PREDICT as u32)
}

#[test]
fn raster_formats_decode_to_the_independent_pixels() {
    for file in ["pattern.png", "pattern.bmp", "pattern.tiff", "pattern.webp"] {
        assert_pixels(&Image::open(fixture(file)).unwrap(), "pattern", 0);
    }
    assert_pixels(&Image::open(fixture("xray16.png")).unwrap(), "xray16", 0);
    assert_pixels(
        &Image::open(fixture("gray_alpha.png")).unwrap(),
        "gray_alpha",
        0,
    );
    assert_pixels(&Image::open(fixture("anim.gif")).unwrap(), "anim", 0);
    // JPEG decoders round IDCT and colour conversion differently: within 2 of libjpeg.
    assert_pixels(&Image::open(fixture("photo.jpg")).unwrap(), "photo", 2);
    // EXIF orientation 6: stored 40x24, shown 24x40.
    let rotated = Image::open(fixture("rotated.jpg")).unwrap();
    assert_eq!((rotated.width(), rotated.height()), (24, 40));
    assert_pixels(&rotated, "rotated", 2);
    // Bytes decode like the file.
    let bytes = std::fs::read(fixture("pattern.png")).unwrap();
    assert_eq!(
        Image::from_bytes(&bytes).unwrap(),
        Image::open(fixture("pattern.bmp")).unwrap()
    );
}

#[test]
fn dicom_pixels_are_windowed_as_the_standard_says() {
    assert_pixels(
        &Image::open(fixture("ct_mono2.dcm")).unwrap(),
        "ct_mono2",
        0,
    );
    let window = ImageOptions {
        window: Some(Window {
            center: 40.0,
            width: 400.0,
        }),
        ..ImageOptions::default()
    };
    assert_pixels(
        &Image::open_with(fixture("ct_mono2.dcm"), &window).unwrap(),
        "ct_mono2_w40_400",
        0,
    );
    assert_pixels(
        &Image::open(fixture("xray_mono1.dcm")).unwrap(),
        "xray_mono1",
        0,
    );
    let frame2 = ImageOptions {
        frame: 2,
        ..ImageOptions::default()
    };
    assert_pixels(
        &Image::open_with(fixture("multiframe.dcm"), &frame2).unwrap(),
        "multiframe_f2",
        0,
    );
    let bytes = std::fs::read(fixture("multiframe.dcm")).unwrap();
    assert_eq!(
        Image::from_bytes_with(&bytes, &frame2).unwrap(),
        Image::open_with(fixture("multiframe.dcm"), &frame2).unwrap()
    );
}

#[test]
fn bad_images_and_dicoms_give_their_errors() {
    let e = Image::open(fixture("corrupt.png")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Image, "{e}");
    let e = Image::open(fixture("bomb.png")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Image, "{e}");
    assert!(e.to_string().contains("20000x20000"), "{e}");
    let small = ImageOptions {
        max_bytes: 1000,
        ..ImageOptions::default()
    };
    let e = Image::open_with(fixture("pattern.png"), &small).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Image, "{e}");
    let e = Image::open(fixture("jpeg2000.dcm")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Dicom, "{e}");
    assert!(e.to_string().contains("unsupported transfer syntax"), "{e}");
    assert!(e.to_string().contains("1.2.840.10008.1.2.4.90"), "{e}");
    let frame5 = ImageOptions {
        frame: 5,
        ..ImageOptions::default()
    };
    let e = Image::open_with(fixture("multiframe.dcm"), &frame5).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Dicom, "{e}");
    assert!(e.to_string().contains("3 frames"), "{e}");
    let e = Image::open("/nonexistent/x.png").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
}

#[test]
fn sdk_tokens_equal_the_mtmd_reference_loop() {
    let model = vlm();
    let mut s = session(&model);
    let prompt = chatml(QUESTION);
    let cases = [
        ("pattern.png", "pattern"),
        ("xray16.png", "xray16"),
        ("ct_mono2.dcm", "ct_mono2"),
        ("photo.jpg", "photo"),
    ];
    let mut outputs = Vec::new();
    for (file, name) in cases {
        let image = Image::open(fixture(file)).unwrap();
        let images = [image.clone()];
        let ours = s
            .generate(
                Prompt::WithImages {
                    text: &prompt,
                    images: &images,
                },
                &greedy(),
            )
            .unwrap();
        assert!(!ours.tokens.is_empty());
        // Lossless inputs: the reference gets the independently computed pixels. JPEG: the
        // reference gets the SDK's decoded pixels (decoders differ by a unit or two, which
        // the tiny model amplifies), so this case checks the mtmd path only.
        let reference = if file.ends_with(".jpg") {
            let raw =
                std::env::temp_dir().join(format!("llmedge-vision-{}.rgb", std::process::id()));
            std::fs::write(&raw, image.rgb()).unwrap();
            let arg = format!("{}x{}:{}", image.width(), image.height(), raw.display());
            let t = reference_tokens(&prompt, &arg);
            let _ = std::fs::remove_file(raw);
            t
        } else {
            reference_tokens(&prompt, &rgb_arg(name))
        };
        assert_eq!(ours.tokens, reference, "{file}");
        outputs.push(ours.tokens);
    }
    // The image steers the output: different pictures, different answers.
    assert_ne!(outputs[0], outputs[1]);
    assert_ne!(outputs[1], outputs[2]);

    // Chat: the rendered template with the image where its content part was.
    let (w, h, rgb) = expected("other");
    let other = Image::from_rgb(w, h, rgb).unwrap();
    let messages = [ChatMessage::user_with_images(QUESTION, vec![other])];
    let chat = s.chat(&messages, &greedy()).unwrap();
    let rendered = s
        .render_chat(&[ChatMessage::user(format!("{MEDIA_MARKER}{QUESTION}"))])
        .unwrap();
    assert_eq!(chat.tokens, reference_tokens(&rendered, &rgb_arg("other")));
}

#[test]
fn openai_content_parts_carry_images() {
    let model = vlm();
    let mut s = session(&model);
    let url = format!("file://{}", fixture("pattern.png").display());
    let messages = llmedge::vision::parse_messages_json(
        &serde_json::json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": QUESTION},
        ]}])
        .to_string(),
        &ImageOptions::default(),
    )
    .unwrap();
    assert_eq!(messages[0].images.len(), 1);
    assert_eq!(messages[0].content, format!("{MEDIA_MARKER}{QUESTION}"));
    let from_parts = s.chat(&messages, &greedy()).unwrap();
    let image = Image::open(fixture("pattern.png")).unwrap();
    let direct = s
        .chat(
            &[ChatMessage::user_with_images(QUESTION, vec![image.clone()])],
            &greedy(),
        )
        .unwrap();
    assert_eq!(from_parts.tokens, direct.tokens);

    // Two images in one message, each at its marker.
    let two = ChatMessage::user_with_images(
        format!("First {MEDIA_MARKER} then {MEDIA_MARKER}. Compare."),
        vec![image.clone(), Image::open(fixture("xray16.png")).unwrap()],
    );
    let both = s.chat(&[two], &greedy()).unwrap();
    assert!(
        both.usage.prompt_tokens as usize > 2 * 16,
        "{:?}",
        both.usage
    );
}

#[test]
fn the_same_image_asked_twice_is_encoded_once() {
    let model = vlm();
    let projector = model.projector().unwrap();
    let image = Image::open(fixture("pattern.png")).unwrap();
    let mut s = session(&model);
    let first = s
        .chat(
            &[ChatMessage::user_with_images(QUESTION, vec![image.clone()])],
            &greedy(),
        )
        .unwrap();
    assert_eq!(projector.stats().encoded, 1);
    let again = s
        .chat(
            &[ChatMessage::user_with_images(QUESTION, vec![image.clone()])],
            &greedy(),
        )
        .unwrap();
    let stats = projector.stats();
    assert_eq!((stats.encoded, stats.cache_hits), (1, 1), "{stats:?}");
    assert_eq!(
        first.tokens, again.tokens,
        "a cached embedding answers the same"
    );
    // Another session on the same model shares the cache; a new picture is encoded.
    let mut other = session(&model);
    other
        .chat(
            &[ChatMessage::user_with_images("What is it?", vec![image])],
            &greedy(),
        )
        .unwrap();
    let png16 = Image::open(fixture("xray16.png")).unwrap();
    other
        .chat(
            &[ChatMessage::user_with_images(QUESTION, vec![png16])],
            &greedy(),
        )
        .unwrap();
    let stats = projector.stats();
    assert_eq!((stats.encoded, stats.cache_hits), (2, 2), "{stats:?}");
    assert_eq!(stats.cached_entries, 2);
    projector.clear_cache();
    assert_eq!(projector.stats().cached_entries, 0);
}

#[test]
fn wrong_projectors_and_requests_give_their_errors() {
    let opts = ModelOptions {
        threads: 2,
        ..ModelOptions::default()
    };
    // A projector for a 576-wide model on the 64-wide tiny model: llama.cpp's n_embd check.
    let tiny = Model::load(fixture("tiny-vlm.gguf"), opts.clone()).unwrap();
    let e = tiny.load_mmproj(fixture("mmproj-576.gguf")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Projector, "{e}");
    assert!(e.to_string().contains("n_embd"), "{e}");
    // A text model is not a projector.
    let e = tiny.load_mmproj(fixture("tiny-vlm.gguf")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Projector, "{e}");
    assert!(e.to_string().contains("not a vision projector"), "{e}");
    let e = tiny.load_mmproj("/nonexistent/mmproj.gguf").unwrap_err();
    assert_eq!(e.code(), ErrorCode::ModelNotFound, "{e}");

    // No projector: an image request says so.
    let mut s = session(&tiny);
    let image = Image::open(fixture("pattern.png")).unwrap();
    let e = s
        .chat(
            &[ChatMessage::user_with_images(QUESTION, vec![image.clone()])],
            &greedy(),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Projector, "{e}");

    tiny.load_mmproj(fixture("tiny-vlm-mmproj.gguf")).unwrap();
    let e = tiny.load_mmproj(fixture("mmproj-576.gguf")).unwrap_err();
    assert!(e.to_string().contains("already has"), "{e}");
    let mut s = session(&tiny);
    // An empty image list, and a marker without its image.
    let prompt = chatml(QUESTION);
    let e = s
        .generate(
            Prompt::WithImages {
                text: &prompt,
                images: &[],
            },
            &greedy(),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(e.to_string().contains("image list is empty"), "{e}");
    let two = [image.clone(), image.clone()];
    let e = s
        .generate(
            Prompt::WithImages {
                text: &prompt,
                images: &two,
            },
            &greedy(),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    // A context too small for the image: an overflow, never a truncated picture.
    let mut small = Session::new(
        &tiny,
        SessionOptions {
            n_ctx: Some(24),
            safety: None,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let e = small
        .chat(
            &[ChatMessage::user_with_images(QUESTION, vec![image])],
            &greedy(),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ContextOverflow, "{e}");

    // The tiny projector on SmolLM2 (576 wide): the same mismatch, the other way round.
    let smol = Model::load(
        root().join("models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"),
        opts,
    )
    .unwrap();
    let e = smol
        .load_mmproj(fixture("tiny-vlm-mmproj.gguf"))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Projector, "{e}");
    assert!(e.to_string().contains("mismatch"), "{e}");
}

#[test]
fn patient_data_reaches_neither_prompt_nor_audit() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("fixtures.json")).unwrap()).unwrap();
    let patient: Vec<String> = meta["patient"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    // The fixture really carries them.
    let raw = std::fs::read(fixture("ct_mono2.dcm")).unwrap();
    for p in &patient {
        assert!(
            raw.windows(p.len()).any(|w| w == p.as_bytes()),
            "{p} not in the file"
        );
    }

    let model = vlm();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditConfig::new(dir.path())).unwrap();
    let mut s = Session::new(
        &model,
        SessionOptions {
            n_ctx: Some(1024),
            audit: Some(std::sync::Arc::new(log)),
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let image = Image::open(fixture("ct_mono2.dcm")).unwrap();
    assert!(!format!("{image:?}").contains("DOE"));
    let messages = [ChatMessage::user_with_images(
        "Draft a report for this chest X-ray.",
        vec![image],
    )];
    let rendered = s.render_chat(&messages).unwrap();
    let out = s.chat(&messages, &greedy()).unwrap();
    drop(s);
    let mut audit = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        audit.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    assert!(audit.contains(&out.request_id), "the request was audited");
    for p in &patient {
        assert!(!rendered.contains(p.as_str()), "{p} in the prompt");
        assert!(!audit.contains(p.as_str()), "{p} in the audit log");
        assert!(!out.text.contains(p.as_str()), "{p} in the output");
    }
}

#[test]
fn the_serving_engine_runs_vision_requests_beside_text_ones() {
    let model = vlm();
    let engine = llmedge::Engine::new(
        &model,
        llmedge::EngineOptions {
            session: SessionOptions {
                n_ctx: Some(1024),
                safety: None,
                ..SessionOptions::default()
            },
            slots: 3,
            ..llmedge::EngineOptions::default()
        },
    )
    .unwrap();
    let image = |name: &str| Image::open(fixture(name)).unwrap();
    let ask = |file: Option<&str>| {
        let messages = match file {
            Some(f) => vec![ChatMessage::user_with_images(QUESTION, vec![image(f)])],
            None => vec![ChatMessage::user(QUESTION)],
        };
        llmedge::EngineRequest::chat(messages, greedy())
    };
    // Two vision requests and a text one, decoded together.
    let streams: Vec<_> = [Some("pattern.png"), None, Some("xray16.png")]
        .into_iter()
        .map(|f| engine.stream(ask(f)).unwrap())
        .collect();
    let batched: Vec<Vec<i32>> = streams
        .into_iter()
        .map(|s| s.completion().unwrap().tokens)
        .collect();
    let mut s = session(&model);
    for (file, tokens) in [Some("pattern.png"), None, Some("xray16.png")]
        .into_iter()
        .zip(&batched)
    {
        let messages = match file {
            Some(f) => vec![ChatMessage::user_with_images(QUESTION, vec![image(f)])],
            None => vec![ChatMessage::user(QUESTION)],
        };
        assert_eq!(
            *tokens,
            s.chat(&messages, &greedy()).unwrap().tokens,
            "{file:?}"
        );
    }
    assert_ne!(
        batched[0], batched[2],
        "the image steers the engine's output"
    );
    // A text-only model refuses an image request at submission, with the projector error.
    let text_model = Model::load(
        fixture("tiny-vlm.gguf"),
        ModelOptions {
            threads: 2,
            ..ModelOptions::default()
        },
    )
    .unwrap();
    let plain = llmedge::Engine::new(&text_model, llmedge::EngineOptions::default()).unwrap();
    let e = plain.stream(ask(Some("pattern.png"))).err().unwrap();
    assert_eq!(e.code(), ErrorCode::Projector, "{e}");
}
