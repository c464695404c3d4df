//! Independent reference loop for vision-language models, written directly on llama-cpp-2's
//! mtmd helpers with no llmedge code: the vision tests compare the SDK's greedy tokens with
//! this loop's, for the same image pixels and prompt.
//!
//! ```text
//! vlm_reference MODEL MMPROJ N_PREDICT PROMPT IMAGE...
//! ```
//!
//! `PROMPT` holds one `<__media__>` marker per image and is tokenized as given (special
//! tokens parsed, BOS added as the model wants). Each `IMAGE` is `WIDTHxHEIGHT:FILE.rgb`
//! (raw RGB8 pixels, row-major) or a path llama.cpp decodes itself (stb_image). Prints one
//! JSON line: the greedy token ids (stopping at an end-of-generation token).

use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputText};
use llama_cpp_2::sampling::LlamaSampler;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: vlm_reference MODEL MMPROJ N_PREDICT PROMPT IMAGE...");
        std::process::exit(2);
    }
    let mut backend = LlamaBackend::init().expect("backend");
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, &args[1], &LlamaModelParams::default())
        .expect("load model");
    let n_predict: usize = args[3].parse().expect("N_PREDICT");
    let params = MtmdContextParams {
        use_gpu: false,
        print_timings: false,
        n_threads: 2,
        ..MtmdContextParams::default()
    };
    let mut mtmd = MtmdContext::init_from_file(&args[2], &model, &params).expect("mmproj");
    let bitmaps: Vec<MtmdBitmap> = args[5..].iter().map(|a| bitmap(&mtmd, a)).collect();
    let refs: Vec<&MtmdBitmap> = bitmaps.iter().collect();
    let chunks = mtmd
        .tokenize(
            MtmdInputText {
                text: args[4].clone(),
                add_special: true,
                parse_special: true,
            },
            &refs,
        )
        .expect("tokenize");

    let n_batch = 512;
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(2048))
        .with_n_batch(n_batch)
        .with_n_threads(2)
        .with_n_threads_batch(2);
    let mut ctx = model.new_context(&backend, ctx_params).expect("context");
    let mut n_past = chunks
        .eval_chunks(&mut mtmd, &mut ctx, 0, 0, n_batch as i32, true)
        .expect("eval chunks");

    let vocab = model.vocab();
    let mut sampler = LlamaSampler::greedy();
    let mut batch = LlamaBatch::new(1, 1);
    let mut out = Vec::new();
    while out.len() < n_predict {
        let token = sampler.sample(&ctx, -1);
        if vocab.is_eog(token) {
            break;
        }
        out.push(token.0);
        batch.clear();
        batch.add(token, n_past, &[0], true).expect("batch");
        n_past += 1;
        ctx.decode(&mut batch).expect("decode");
    }
    println!("{{\"tokens\":{out:?}}}");
}

fn bitmap(mtmd: &MtmdContext, arg: &str) -> MtmdBitmap {
    if let Some((dims, file)) = arg.split_once(':').filter(|(d, _)| d.contains('x')) {
        let (w, h) = dims.split_once('x').expect("WIDTHxHEIGHT");
        let (w, h): (u32, u32) = (w.parse().expect("width"), h.parse().expect("height"));
        let data = std::fs::read(file).expect("read rgb");
        MtmdBitmap::from_image_data(w, h, &data).expect("bitmap")
    } else {
        MtmdBitmap::from_file(mtmd, arg, false).expect("image file")
    }
}
