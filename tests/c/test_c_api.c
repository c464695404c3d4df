/* Behaviour of the C API against the real default model.
 * Usage: test_c_api MODEL_PATH EXPECTED_TEXT_FILE CORRUPT_MODEL_PATH */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

static const char *PROMPT = "The capital of France is";
static const char *UTF8_PROMPT =
    "<|im_start|>user\n\xe8\xaf\xb7\xe7\x94\xa8\xe4\xb8\xad\xe6\x96\x87\xe4\xbb\x8b\xe7\xbb\x8d\xe5\x8c\x97"
    "\xe4\xba\xac\xe3\x80\x82 \xf0\x9f\x99\x82<|im_end|>\n<|im_start|>assistant\n";

static llmedge_model *g_model;

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    CHECK(buf != NULL);
    CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Strict UTF-8 validation (no overlongs, no surrogates). */
static bool valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
        else return false;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += k + 1;
    }
    return true;
}

static llmedge_session *new_session(uint32_t threads) {
    llmedge_session_options *so = llmedge_session_options_new();
    CHECK(so != NULL);
    CHECK_OK(llmedge_session_options_set_threads(so, threads));
    llmedge_session *s = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &s));
    llmedge_session_options_free(so);
    return s;
}

static llmedge_generate_options *greedy(uint32_t max_tokens) {
    llmedge_generate_options *o = llmedge_generate_options_new();
    CHECK(o != NULL);
    CHECK_OK(llmedge_generate_options_set_greedy(o, true));
    CHECK_OK(llmedge_generate_options_set_max_tokens(o, max_tokens));
    return o;
}

static void completion_text(const llmedge_completion *c, const char **p, size_t *n) {
    CHECK_OK(llmedge_completion_text(c, p, n));
    CHECK((*p)[*n] == '\0');
}

static void test_versions(void) {
    CHECK(llmedge_abi_version() == LLMEDGE_ABI_VERSION);
    CHECK(strcmp(llmedge_version(), LLMEDGE_VERSION_STRING) == 0);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", LLMEDGE_VERSION_MAJOR, LLMEDGE_VERSION_MINOR, LLMEDGE_VERSION_PATCH);
    CHECK(strcmp(buf, LLMEDGE_VERSION_STRING) == 0);
    CHECK(strcmp(llmedge_status_name(LLMEDGE_STATUS_MODEL_NOT_FOUND), "model_not_found") == 0);
    CHECK(strcmp(llmedge_status_name(12345), "unknown") == 0);
    CHECK(strcmp(llmedge_status_name(LLMEDGE_STATUS_MODEL_INTEGRITY), "model_integrity") == 0);
}

static void test_greedy_equals_rust(const char *expected_path) {
    size_t want_len = 0;
    char *want = read_file(expected_path, &want_len);
    llmedge_session *s = new_session(2);
    llmedge_generate_options *o = greedy(32);
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_generate(s, PROMPT, strlen(PROMPT), o, NULL, NULL, &c));
    const char *text;
    size_t len;
    completion_text(c, &text, &len);
    if (len != want_len || memcmp(text, want, len) != 0) {
        fprintf(stderr, "C text  : [%.*s]\nRust text: [%s]\n", (int)len, text, want);
        CHECK(0);
    }
    uint32_t prompt_tokens = 0, gen_tokens = 0;
    CHECK_OK(llmedge_completion_usage(c, &prompt_tokens, &gen_tokens));
    const int32_t *tokens;
    size_t n_tokens;
    CHECK_OK(llmedge_completion_tokens(c, &tokens, &n_tokens));
    CHECK(n_tokens == gen_tokens && gen_tokens > 0 && prompt_tokens > 0);
    double tps = 0;
    CHECK_OK(llmedge_completion_timing(c, LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND, &tps));
    CHECK(tps > 0);
    CHECK_STATUS(llmedge_completion_timing(c, 77, &tps), LLMEDGE_STATUS_INVALID_ARGUMENT);
    /* Generating again from the same tokens through the token API gives the same ids. */
    int32_t *ptoks = NULL;
    size_t n_ptoks = 0;
    CHECK_OK(llmedge_model_tokenize(g_model, PROMPT, strlen(PROMPT), true, true, &ptoks, &n_ptoks));
    llmedge_completion *c2 = NULL;
    CHECK_OK(llmedge_session_generate_tokens(s, ptoks, n_ptoks, o, NULL, NULL, &c2));
    const int32_t *tokens2;
    size_t n_tokens2;
    CHECK_OK(llmedge_completion_tokens(c2, &tokens2, &n_tokens2));
    CHECK(n_tokens2 == n_tokens && memcmp(tokens, tokens2, n_tokens * sizeof(int32_t)) == 0);
    char *detok = NULL;
    size_t detok_len = 0;
    CHECK_OK(llmedge_model_detokenize(g_model, tokens, n_tokens, false, &detok, &detok_len));
    CHECK(detok_len == len && memcmp(detok, text, len) == 0);
    llmedge_string_free(detok);
    llmedge_tokens_free(ptoks, n_ptoks);
    llmedge_completion_free(c2);
    llmedge_completion_free(c);
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
    free(want);
}

struct collect {
    char buf[8192];
    size_t len;
    int pieces;
    bool all_valid;
    int stop_after; /* return false on this piece (0 = never) */
};

static bool collect_cb(const char *piece, size_t len, void *user_data) {
    struct collect *c = user_data;
    CHECK(len > 0 && c->len + len < sizeof c->buf);
    if (!valid_utf8((const unsigned char *)piece, len)) c->all_valid = false;
    memcpy(c->buf + c->len, piece, len);
    c->len += len;
    c->pieces++;
    return c->stop_after == 0 || c->pieces < c->stop_after;
}

static void test_streaming_utf8(void) {
    llmedge_session *s = new_session(2);
    llmedge_generate_options *o = greedy(48);
    llmedge_completion *blocking = NULL, *streamed = NULL;
    CHECK_OK(llmedge_session_generate(s, UTF8_PROMPT, strlen(UTF8_PROMPT), o, NULL, NULL, &blocking));
    struct collect col = {.len = 0, .pieces = 0, .all_valid = true, .stop_after = 0};
    CHECK_OK(llmedge_session_generate(s, UTF8_PROMPT, strlen(UTF8_PROMPT), o, collect_cb, &col, &streamed));
    const char *text;
    size_t len;
    completion_text(blocking, &text, &len);
    CHECK(col.all_valid);
    CHECK(valid_utf8((const unsigned char *)col.buf, col.len));
    CHECK(col.len == len && memcmp(col.buf, text, len) == 0);
    bool non_ascii = false;
    for (size_t i = 0; i < len; i++) non_ascii |= (unsigned char)text[i] >= 0x80;
    CHECK(non_ascii);
    llmedge_completion_free(blocking);
    llmedge_completion_free(streamed);
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
}

static void test_cancel_by_callback(void) {
    /* Without the safety layer: its output filter may hold back pieces (digit runs, names),
     * which would blur the token count checked here. */
    llmedge_session_options *so = llmedge_session_options_new();
    CHECK_OK(llmedge_session_options_set_threads(so, 2));
    CHECK_OK(llmedge_session_options_set_safety_enabled(so, false));
    llmedge_session *s = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &s));
    llmedge_session_options_free(so);
    llmedge_generate_options *o = greedy(100);
    CHECK_OK(llmedge_generate_options_set_ignore_eos(o, true));
    struct collect col = {.len = 0, .pieces = 0, .all_valid = true, .stop_after = 3};
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_generate(s, PROMPT, strlen(PROMPT), o, collect_cb, &col, &c));
    llmedge_finish_reason why;
    CHECK_OK(llmedge_completion_finish_reason(c, &why));
    CHECK(why == LLMEDGE_FINISH_CANCELLED);
    uint32_t p, g;
    CHECK_OK(llmedge_completion_usage(c, &p, &g));
    CHECK(g <= 4);
    llmedge_completion_free(c);
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
}

struct cancel_ctx {
    llmedge_session *session;
    int pieces;
    int after_cancel;
    pthread_t thread;
    bool started;
};

static void *cancel_thread(void *arg) {
    struct cancel_ctx *ctx = arg;
    CHECK_OK(llmedge_session_cancel(ctx->session));
    return NULL;
}

static bool cancel_cb(const char *piece, size_t len, void *user_data) {
    (void)piece;
    (void)len;
    struct cancel_ctx *ctx = user_data;
    ctx->pieces++;
    if (ctx->started) ctx->after_cancel++;
    if (ctx->pieces == 4) {
        CHECK(pthread_create(&ctx->thread, NULL, cancel_thread, ctx) == 0);
        CHECK(pthread_join(ctx->thread, NULL) == 0);
        ctx->started = true;
    }
    return true;
}

static void test_cancel_from_thread(void) {
    llmedge_session *s = new_session(2);
    llmedge_generate_options *o = greedy(200);
    CHECK_OK(llmedge_generate_options_set_ignore_eos(o, true));
    struct cancel_ctx ctx = {.session = s, .pieces = 0, .after_cancel = 0, .started = false};
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_generate(s, PROMPT, strlen(PROMPT), o, cancel_cb, &ctx, &c));
    llmedge_finish_reason why;
    CHECK_OK(llmedge_completion_finish_reason(c, &why));
    CHECK(why == LLMEDGE_FINISH_CANCELLED);
    CHECK(ctx.after_cancel <= 1);
    uint32_t p, g;
    CHECK_OK(llmedge_completion_usage(c, &p, &g));
    CHECK(g < 10);
    llmedge_completion_free(c);
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
}

static void test_bad_inputs(const char *corrupt_path) {
    llmedge_session *s = new_session(2);
    const char bad[] = {'a', (char)0xff, 'b'};
    llmedge_completion *c = NULL;
    CHECK_STATUS(llmedge_session_generate(s, bad, sizeof bad, NULL, NULL, NULL, &c), LLMEDGE_STATUS_INVALID_UTF8);
    CHECK(c == NULL); /* out-params untouched on failure */
    size_t mlen = 0;
    const char *msg = llmedge_last_error(&mlen);
    CHECK(mlen > 0 && strstr(msg, "UTF-8") != NULL && strlen(msg) == mlen);

    llmedge_model *m = NULL;
    const char *missing = "/nonexistent/model.gguf";
    CHECK_STATUS(llmedge_model_load(missing, strlen(missing), NULL, &m), LLMEDGE_STATUS_MODEL_NOT_FOUND);
    CHECK(m == NULL && strstr(llmedge_last_error(NULL), "not found") != NULL);
    CHECK_STATUS(llmedge_model_load(corrupt_path, strlen(corrupt_path), NULL, &m), LLMEDGE_STATUS_INVALID_MODEL);
    CHECK(m == NULL && strlen(llmedge_last_error(NULL)) > 0);

    llmedge_generate_options *o = llmedge_generate_options_new();
    CHECK_OK(llmedge_generate_options_set_top_p(o, 2.0f));
    CHECK_STATUS(llmedge_session_generate(s, PROMPT, strlen(PROMPT), o, NULL, NULL, &c), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(llmedge_last_error(NULL), "top_p") != NULL);
    CHECK_STATUS(llmedge_generate_options_set_truncation(o, 9), LLMEDGE_STATUS_INVALID_ARGUMENT);
    llmedge_generate_options_free(o);

    /* Context overflow is reported before decoding. */
    llmedge_session_options *so = llmedge_session_options_new();
    CHECK_OK(llmedge_session_options_set_n_ctx(so, 32));
    llmedge_session *small = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &small));
    char long_prompt[2000];
    for (size_t i = 0; i + 5 < sizeof long_prompt; i += 5) memcpy(long_prompt + i, "word ", 5);
    CHECK_STATUS(llmedge_session_generate(small, long_prompt, 1995, NULL, NULL, NULL, &c), LLMEDGE_STATUS_CONTEXT_OVERFLOW);
    CHECK_STATUS(llmedge_session_options_set_chat_template(so, "nope", 4), LLMEDGE_STATUS_TEMPLATE);
    llmedge_session_free(small);
    llmedge_session_options_free(so);
    llmedge_session_free(s);
}

/* Resource limits: a prompt over max_prompt_tokens and a session over max_sessions get their
 * status before anything is evaluated or allocated, and the model stays usable. */
static void test_limits(const char *model_path) {
    llmedge_model_options *mo = llmedge_model_options_new();
    CHECK_OK(llmedge_model_options_set_threads(mo, 2));
    CHECK_OK(llmedge_model_options_set_max_prompt_tokens(mo, 16));
    CHECK_OK(llmedge_model_options_set_max_sessions(mo, 1));
    CHECK_STATUS(llmedge_model_options_set_max_sessions(NULL, 1), LLMEDGE_STATUS_NULL_ARG);
    llmedge_model *m = NULL;
    CHECK_OK(llmedge_model_load(model_path, strlen(model_path), mo, &m));
    llmedge_model_options_free(mo);
    llmedge_session *s = NULL, *second = NULL;
    CHECK_OK(llmedge_session_new(m, NULL, &s));
    CHECK_STATUS(llmedge_session_new(m, NULL, &second), LLMEDGE_STATUS_BUSY);
    CHECK(second == NULL && strstr(llmedge_last_error(NULL), "max_sessions (1)") != NULL);
    char long_prompt[200];
    for (size_t i = 0; i + 5 <= sizeof long_prompt; i += 5) memcpy(long_prompt + i, "word ", 5);
    llmedge_generate_options *o = greedy(4);
    llmedge_completion *c = NULL;
    CHECK_STATUS(llmedge_session_generate(s, long_prompt, sizeof long_prompt, o, NULL, NULL, &c), LLMEDGE_STATUS_LIMIT);
    CHECK(c == NULL && strstr(llmedge_last_error(NULL), "max_prompt_tokens (16)") != NULL);
    CHECK(strcmp(llmedge_status_name(LLMEDGE_STATUS_LIMIT), "limit") == 0);
    CHECK_OK(llmedge_session_generate(s, PROMPT, strlen(PROMPT), o, NULL, NULL, &c));
    llmedge_completion_free(c);
    llmedge_session_free(s);
    CHECK_OK(llmedge_session_new(m, NULL, &second)); /* the freed place is reusable */
    llmedge_session_free(second);
    llmedge_generate_options_free(o);
    llmedge_model_free(m);
}

static void test_chat_and_info(void) {
    llmedge_session *s = new_session(2);
    llmedge_chat_messages *msgs = llmedge_chat_messages_new();
    CHECK_OK(llmedge_chat_messages_add(msgs, "system", 6, "You are terse.", 14));
    CHECK_OK(llmedge_chat_messages_add(msgs, "user", 4, "Say hello.", 10));
    llmedge_generate_options *o = greedy(16);
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_chat(s, msgs, o, NULL, NULL, &c));
    const char *text;
    size_t len;
    completion_text(c, &text, &len);
    CHECK(len > 0);
    llmedge_completion_free(c);
    char *json = NULL;
    size_t json_len = 0;
    CHECK_OK(llmedge_model_info_json(g_model, &json, &json_len));
    CHECK(strstr(json, "\"architecture\":\"llama\"") != NULL && strlen(json) == json_len);
    llmedge_string_free(json);
    uint32_t n_vocab = 0, n_embd = 0, n_ctx = 0;
    CHECK_OK(llmedge_model_n_vocab(g_model, &n_vocab));
    CHECK_OK(llmedge_model_n_embd(g_model, &n_embd));
    CHECK_OK(llmedge_model_n_ctx_train(g_model, &n_ctx));
    CHECK(n_vocab == 49152 && n_embd == 576 && n_ctx == 8192);
    float *vec = NULL;
    size_t dim = 0;
    CHECK_OK(llmedge_model_embed(g_model, "hello", 5, &vec, &dim));
    double norm = 0;
    for (size_t i = 0; i < dim; i++) norm += (double)vec[i] * vec[i];
    CHECK(dim == n_embd && norm > 0.999 && norm < 1.001);
    llmedge_floats_free(vec, dim);
    llmedge_generate_options_free(o);
    llmedge_chat_messages_free(msgs);
    llmedge_session_free(s);
}

#define N_THREADS 8
struct worker {
    pthread_t thread;
    int32_t tokens[64];
    size_t n_tokens;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    llmedge_session *s = new_session(1);
    llmedge_generate_options *o = greedy(16);
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_generate(s, PROMPT, strlen(PROMPT), o, NULL, NULL, &c));
    const int32_t *t;
    CHECK_OK(llmedge_completion_tokens(c, &t, &w->n_tokens));
    CHECK(w->n_tokens <= 64);
    memcpy(w->tokens, t, w->n_tokens * sizeof(int32_t));
    llmedge_completion_free(c);
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
    return NULL;
}

static void test_threads(void) {
    struct worker reference;
    worker_main(&reference);
    CHECK(reference.n_tokens > 0);
    struct worker workers[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) CHECK(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0);
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(pthread_join(workers[i].thread, NULL) == 0);
        CHECK(workers[i].n_tokens == reference.n_tokens);
        CHECK(memcmp(workers[i].tokens, reference.tokens, reference.n_tokens * sizeof(int32_t)) == 0);
    }
}

/* The router: each rule, the classifier stage on the real model (its answer is a route
 * name), and the mistakes. */
static void test_router(void) {
    const char *toml =
        "[[routes]]\nname = \"finance\"\nmodel = \"base\"\nkeywords = [\"invoice\"]\n"
        "tenants = [\"bank-1\"]\nadapters = [{ name = \"fin\", scale = 0.5 }]\n"
        "[[routes]]\nname = \"medical\"\nmodel = \"med\"\nregex = \"ICD-?10\"\n"
        "models = [\"medical-v2\"]\n"
        "[[routes]]\nname = \"general\"\nmodel = \"base\"\ndefault = true\n";
    llmedge_router *router = NULL;
    CHECK_OK(llmedge_router_from_toml(toml, strlen(toml), &router));
    struct {
        const char *model, *tenant, *text, *want;
    } cases[] = {
        {"medical-v2", "bank-1", "invoice",
         "{\"route\":\"medical\",\"model\":\"med\",\"adapters\":[],\"rule\":\"model\","
         "\"matched\":\"medical-v2\"}"},
        {NULL, "bank-1", "hello",
         "{\"route\":\"finance\",\"model\":\"base\",\"adapters\":[{\"name\":\"fin\","
         "\"scale\":0.5}],\"rule\":\"tenant\",\"matched\":\"bank-1\"}"},
        {NULL, "", "an INVOICE",
         "{\"route\":\"finance\",\"model\":\"base\",\"adapters\":[{\"name\":\"fin\","
         "\"scale\":0.5}],\"rule\":\"keyword\",\"matched\":\"INVOICE\"}"},
        {NULL, "", "code ICD10",
         "{\"route\":\"medical\",\"model\":\"med\",\"adapters\":[],\"rule\":\"regex\","
         "\"matched\":\"ICD-?10\"}"},
        {NULL, "", "hello",
         "{\"route\":\"general\",\"model\":\"base\",\"adapters\":[],\"rule\":\"default\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *json = NULL;
        size_t len = 0;
        const char *m = cases[i].model;
        CHECK_OK(llmedge_router_route(router, NULL, m, m ? strlen(m) : 0, cases[i].tenant,
                                      strlen(cases[i].tenant), cases[i].text,
                                      strlen(cases[i].text), &json, &len));
        CHECK(len == strlen(cases[i].want) && memcmp(json, cases[i].want, len) == 0);
        llmedge_string_free(json);
    }
    llmedge_router_free(router);

    /* The classifier stage: needs a classifier; with one, the answer is one of the routes. */
    const char *ctoml = "[[routes]]\nname = \"finance\"\nmodel = \"base\"\n"
                        "[[routes]]\nname = \"medical\"\nmodel = \"base\"\n"
                        "[router.classifier]\nmodel = \"base\"\n";
    CHECK_OK(llmedge_router_from_toml(ctoml, strlen(ctoml), &router));
    const char *q = "What dose of ibuprofen is safe for a child?";
    char *json = NULL;
    size_t len = 0;
    CHECK_STATUS(llmedge_router_route(router, NULL, NULL, 0, "", 0, q, strlen(q), &json, &len),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(json == NULL);
    llmedge_route_classifier *classifier = NULL;
    CHECK_OK(llmedge_route_classifier_new(g_model, &classifier));
    CHECK_OK(llmedge_router_route(router, classifier, NULL, 0, "", 0, q, strlen(q), &json, &len));
    CHECK(strstr(json, "\"rule\":\"classifier\"") != NULL);
    CHECK(strstr(json, "\"route\":\"finance\"") != NULL ||
          strstr(json, "\"route\":\"medical\"") != NULL);
    llmedge_string_free(json);
    llmedge_route_classifier_free(classifier);
    llmedge_router_free(router);
    router = NULL;

    /* Mistakes: a bad line is a config error, invalid UTF-8 is refused. */
    const char *bad = "[[routes]]\nname = \"a\"\nmodel = \"m\"\ncolour = 1\n";
    CHECK_STATUS(llmedge_router_from_toml(bad, strlen(bad), &router), LLMEDGE_STATUS_CONFIG);
    CHECK(router == NULL && strstr(llmedge_last_error(NULL), "<router>:4") != NULL);
    CHECK_STATUS(llmedge_router_from_toml("\xff", 1, &router), LLMEDGE_STATUS_INVALID_UTF8);
    CHECK_STATUS(llmedge_router_from_file("/nonexistent/r.toml", 19, &router), LLMEDGE_STATUS_IO);
    CHECK(router == NULL);
}

int main(int argc, char **argv) {
    CHECK(argc == 4);
    llmedge_model_options *mo = llmedge_model_options_new();
    CHECK_OK(llmedge_model_options_set_threads(mo, 2));
    CHECK_OK(llmedge_model_load(argv[1], strlen(argv[1]), mo, &g_model));
    llmedge_model_options_free(mo);
    test_versions();
    test_greedy_equals_rust(argv[2]);
    test_streaming_utf8();
    test_cancel_by_callback();
    test_cancel_from_thread();
    test_bad_inputs(argv[3]);
    test_chat_and_info();
    test_threads();
    test_limits(argv[1]);
    test_router();
    llmedge_model_free(g_model);
    printf("test_c_api: all checks passed\n");
    return 0;
}
