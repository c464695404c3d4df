/* LoRA adapters and the model tools (merge, import, quantize, perplexity) through the C API,
 * on the real default model and the seeded fixtures of `make fixtures`.
 * Usage: test_lora MODEL_PATH LORA_FIXTURE_DIR */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

#define TOKENS 16

/* The first prompt is one where adapter a changes the greedy text (as in core/tests/lora.rs). */
static const char *PROMPTS[2] = {"A radiology report should describe", "The capital of France is"};

static llmedge_model *g_model;
static const char *g_model_path;
static const char *g_fixtures;
static char g_tmp[256];

/* `name` in the fixture folder, written to `buf`. */
static const char *fixture(char *buf, size_t cap, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", g_fixtures, name);
    CHECK(n > 0 && (size_t)n < cap);
    return buf;
}

static const char *tmp_file(char *buf, size_t cap, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", g_tmp, name);
    CHECK(n > 0 && (size_t)n < cap);
    return buf;
}

static llmedge_lora *load_lora(const llmedge_model *model, const char *path) {
    llmedge_lora *l = NULL;
    CHECK_OK(llmedge_model_load_lora(model, path, strlen(path), &l));
    CHECK(l != NULL);
    return l;
}

static llmedge_model *load_model(const char *path) {
    llmedge_model_options *mo = llmedge_model_options_new();
    CHECK(mo != NULL);
    CHECK_OK(llmedge_model_options_set_threads(mo, 2));
    llmedge_model *m = NULL;
    CHECK_OK(llmedge_model_load(path, strlen(path), mo, &m));
    llmedge_model_options_free(mo);
    return m;
}

/* A session without safety (it could rewrite outputs) with `n` adapters at scale 1. */
static llmedge_session *session_with(const llmedge_model *model, llmedge_lora *const *loras, size_t n) {
    llmedge_session_options *so = llmedge_session_options_new();
    CHECK(so != NULL);
    CHECK_OK(llmedge_session_options_set_safety_enabled(so, false));
    CHECK_OK(llmedge_session_options_set_n_ctx(so, 256));
    for (size_t i = 0; i < n; i++) CHECK_OK(llmedge_session_options_add_lora(so, loras[i], 1.0f));
    llmedge_session *s = NULL;
    CHECK_OK(llmedge_session_new(model, so, &s));
    llmedge_session_options_free(so);
    return s;
}

static llmedge_generate_options *greedy(void) {
    llmedge_generate_options *o = llmedge_generate_options_new();
    CHECK(o != NULL);
    CHECK_OK(llmedge_generate_options_set_greedy(o, true));
    CHECK_OK(llmedge_generate_options_set_max_tokens(o, TOKENS));
    CHECK_OK(llmedge_generate_options_set_ignore_eos(o, true));
    return o;
}

/* Greedy text of `prompt` (caller frees). */
static char *gen(llmedge_session *s, const char *prompt, const llmedge_generate_options *o) {
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_generate(s, prompt, strlen(prompt), o, NULL, NULL, &c));
    const char *p = NULL;
    size_t n = 0;
    CHECK_OK(llmedge_completion_text(c, &p, &n));
    char *out = malloc(n + 1);
    CHECK(out != NULL);
    memcpy(out, p, n + 1);
    llmedge_completion_free(c);
    return out;
}

static char *lora_info(const llmedge_lora *l) {
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(llmedge_lora_info_json(l, &json, &len));
    CHECK(json != NULL && strlen(json) == len);
    return json;
}

static void test_load_and_info(void) {
    char path[1024];
    llmedge_lora *a = load_lora(g_model, fixture(path, sizeof path, "lora_smollm2_a.gguf"));
    llmedge_lora *again = load_lora(g_model, path);
    char *info = lora_info(a);
    CHECK(strstr(info, "\"architecture\":\"llama\"") != NULL);
    CHECK(strstr(info, "\"rank\":8") != NULL);
    CHECK(strstr(info, "\"alpha\":8.0") != NULL);
    CHECK(strstr(info, "\"sha256\":\"") != NULL);
    char *info2 = lora_info(again);
    CHECK(strcmp(info, info2) == 0);
    llmedge_string_free(info);
    llmedge_string_free(info2);

    /* The second load gave the same adapter: attaching both is attaching one twice. */
    llmedge_session_options *so = llmedge_session_options_new();
    CHECK_OK(llmedge_session_options_add_lora(so, a, 1.0f));
    CHECK_OK(llmedge_session_options_add_lora(so, again, 0.5f));
    llmedge_session *s = NULL;
    CHECK_STATUS(llmedge_session_new(g_model, so, &s), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(s == NULL);
    CHECK(strstr(llmedge_last_error(NULL), "twice") != NULL);
    llmedge_session_options_free(so);

    /* Non-finite scales are refused when the session is made. */
    so = llmedge_session_options_new();
    CHECK_OK(llmedge_session_options_add_lora(so, a, NAN));
    CHECK_STATUS(llmedge_session_new(g_model, so, &s), LLMEDGE_STATUS_INVALID_ARGUMENT);
    llmedge_session_options_free(so);

    /* Freeing a handle does not unload the adapter: the other handle still works. */
    llmedge_lora_free(again);
    s = session_with(g_model, &a, 1);
    llmedge_generate_options *o = greedy();
    free(gen(s, PROMPTS[0], o));
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
    llmedge_lora_free(a);

    /* Adapters that do not fit. */
    const char *bad[] = {"lora_gemma3_arch.gguf", "lora_bad_shape.gguf", "lora_truncated.gguf",
                         "does_not_exist.gguf"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        llmedge_lora *l = NULL;
        fixture(path, sizeof path, bad[i]);
        CHECK_STATUS(llmedge_model_load_lora(g_model, path, strlen(path), &l), LLMEDGE_STATUS_ADAPTER);
        CHECK(l == NULL);
        size_t mlen = 0;
        CHECK(llmedge_last_error(&mlen) != NULL && mlen > 0);
    }
    /* Not UTF-8. */
    llmedge_lora *l = NULL;
    CHECK_STATUS(llmedge_model_load_lora(g_model, "\xff", 1, &l), LLMEDGE_STATUS_INVALID_UTF8);
}

/* Base and adapter-a greedy texts of both prompts, for the merge check. */
static char *g_base[2], *g_with_a[2];

static void test_runtime_switching(void) {
    char path[1024];
    llmedge_lora *a = load_lora(g_model, fixture(path, sizeof path, "lora_smollm2_a.gguf"));
    llmedge_lora *b = load_lora(g_model, fixture(path, sizeof path, "lora_smollm2_b.gguf"));
    llmedge_generate_options *o = greedy();

    llmedge_session *bare = session_with(g_model, NULL, 0);
    llmedge_session *with_a = session_with(g_model, &a, 1);
    for (int i = 0; i < 2; i++) {
        g_base[i] = gen(bare, PROMPTS[i], o);
        g_with_a[i] = gen(with_a, PROMPTS[i], o);
        CHECK(strlen(g_base[i]) > 0 && strlen(g_with_a[i]) > 0);
    }
    CHECK(strcmp(g_base[0], g_with_a[0]) != 0);

    /* Per request on the adapter session: the bare model, then the session's set again. */
    llmedge_generate_options *none = greedy();
    CHECK_OK(llmedge_generate_options_set_no_lora(none));
    char *t = gen(with_a, PROMPTS[0], none);
    CHECK(strcmp(t, g_base[0]) == 0);
    free(t);
    t = gen(with_a, PROMPTS[0], o);
    CHECK(strcmp(t, g_with_a[0]) == 0);
    free(t);

    /* Per request on the bare session: adapter a gives what the adapter session gives. */
    llmedge_generate_options *req_a = greedy();
    CHECK_OK(llmedge_generate_options_add_lora(req_a, a, 1.0f));
    t = gen(bare, PROMPTS[0], req_a);
    CHECK(strcmp(t, g_with_a[0]) == 0);
    free(t);
    t = gen(bare, PROMPTS[0], o);
    CHECK(strcmp(t, g_base[0]) == 0);
    free(t);

    /* set_no_lora replaces adapters added before it. */
    CHECK_OK(llmedge_generate_options_set_no_lora(req_a));
    t = gen(bare, PROMPTS[0], req_a);
    CHECK(strcmp(t, g_base[0]) == 0);
    free(t);

    /* Two adapters at once, per session and per request, give the same text. */
    llmedge_lora *both[2] = {a, b};
    llmedge_session *with_ab = session_with(g_model, both, 2);
    char *ab = gen(with_ab, PROMPTS[0], o);
    CHECK(strlen(ab) > 0);
    llmedge_generate_options *req_ab = greedy();
    CHECK_OK(llmedge_generate_options_add_lora(req_ab, a, 1.0f));
    CHECK_OK(llmedge_generate_options_add_lora(req_ab, b, 1.0f));
    t = gen(bare, PROMPTS[0], req_ab);
    CHECK(strcmp(t, ab) == 0);
    free(t);
    free(ab);

    /* An adapter of another model is refused per request. */
    llmedge_model *other = load_model(g_model_path);
    llmedge_lora *foreign = load_lora(other, fixture(path, sizeof path, "lora_smollm2_a.gguf"));
    llmedge_generate_options *req_foreign = greedy();
    CHECK_OK(llmedge_generate_options_add_lora(req_foreign, foreign, 1.0f));
    llmedge_completion *c = NULL;
    CHECK_STATUS(llmedge_session_generate(bare, "a", 1, req_foreign, NULL, NULL, &c),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(c == NULL);
    llmedge_generate_options_free(req_foreign);
    llmedge_lora_free(foreign);
    llmedge_model_free(other);

    llmedge_generate_options_free(req_ab);
    llmedge_generate_options_free(req_a);
    llmedge_generate_options_free(none);
    llmedge_generate_options_free(o);
    llmedge_session_free(with_ab);
    llmedge_session_free(bare);
    llmedge_session_free(with_a);
    llmedge_lora_free(a);
    llmedge_lora_free(b);
}

struct progress {
    size_t calls, last_done, last_total;
    bool monotonic;
};

static bool on_progress(size_t done, size_t total, void *user_data) {
    struct progress *p = user_data;
    if (done < p->last_done || done > total) p->monotonic = false;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
    return true;
}

static void test_merge(const char *model_path) {
    char adapter[1024], out[1024];
    fixture(adapter, sizeof adapter, "lora_smollm2_a.gguf");
    tmp_file(out, sizeof out, "merged.gguf");
    llmedge_merge_options *mo = llmedge_merge_options_new();
    CHECK(mo != NULL);
    char *report = NULL;
    size_t rlen = 0;
    /* No adapters. */
    CHECK_STATUS(llmedge_lora_merge(model_path, strlen(model_path), out, strlen(out), mo, NULL, NULL,
                                    &report, &rlen),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(llmedge_merge_options_add_lora(mo, adapter, strlen(adapter), INFINITY),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(llmedge_merge_options_add_lora(mo, adapter, strlen(adapter), 1.0f));
    CHECK_OK(llmedge_merge_options_set_out_type(mo, "q9_9", 4));
    CHECK_STATUS(llmedge_lora_merge(model_path, strlen(model_path), out, strlen(out), mo, NULL, NULL,
                                    &report, &rlen),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(report == NULL && access(out, F_OK) != 0);
    CHECK_OK(llmedge_merge_options_set_out_type(mo, "F16", 3));
    struct progress p = {0, 0, 0, true};
    CHECK_OK(llmedge_lora_merge(model_path, strlen(model_path), out, strlen(out), mo, on_progress, &p,
                                &report, &rlen));
    CHECK(report != NULL && strlen(report) == rlen);
    CHECK(strstr(report, "\"merged_tensors\":") != NULL);
    CHECK(strstr(report, "\"adapters\":1") != NULL);
    llmedge_string_free(report);
    CHECK(p.calls > 0 && p.monotonic && p.last_done == p.last_total);
    llmedge_merge_options_free(mo);

    /* The merged model generates what the base model with the runtime adapter generates. */
    llmedge_model *merged = load_model(out);
    llmedge_session *s = session_with(merged, NULL, 0);
    llmedge_generate_options *o = greedy();
    for (int i = 0; i < 2; i++) {
        char *t = gen(s, PROMPTS[i], o);
        if (strcmp(t, g_with_a[i]) != 0) {
            fprintf(stderr, "merged: %s\nruntime: %s\n", t, g_with_a[i]);
            CHECK(!"merged output differs from the runtime adapter's");
        }
        free(t);
    }
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
    llmedge_model_free(merged);
    CHECK(unlink(out) == 0);
}

static void test_import(const char *model_path) {
    char peft[1024], out[1024];
    fixture(peft, sizeof peft, "peft_smollm2_r8");
    tmp_file(out, sizeof out, "imported.gguf");
    char *report = NULL;
    size_t rlen = 0;
    CHECK_OK(llmedge_lora_import(peft, strlen(peft), model_path, strlen(model_path), out, strlen(out), true,
                                 &report, &rlen));
    CHECK(strstr(report, "\"rank\":8") != NULL);
    CHECK(strstr(report, "\"architecture\":\"llama\"") != NULL);
    llmedge_string_free(report);
    llmedge_lora *l = load_lora(g_model, out);
    char *info = lora_info(l);
    CHECK(strstr(info, "\"rank\":8") != NULL);
    llmedge_string_free(info);
    llmedge_session *s = session_with(g_model, &l, 1);
    llmedge_generate_options *o = greedy();
    char *t = gen(s, PROMPTS[0], o);
    CHECK(strlen(t) > 0);
    free(t);
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
    llmedge_lora_free(l);
    CHECK(unlink(out) == 0);

    /* A DoRA adapter cannot be imported; a missing folder neither. */
    fixture(peft, sizeof peft, "peft_dora");
    tmp_file(out, sizeof out, "dora.gguf");
    llmedge_status st = llmedge_lora_import(peft, strlen(peft), model_path, strlen(model_path), out,
                                            strlen(out), false, &report, &rlen);
    CHECK(st == LLMEDGE_STATUS_ADAPTER);
    CHECK(access(out, F_OK) != 0);
    CHECK(llmedge_lora_import("/nonexistent", 12, model_path, strlen(model_path), out, strlen(out), false,
                              &report, &rlen) != LLMEDGE_STATUS_OK);
}

static void test_quantize(const char *model_path) {
    char f16[1024], q8[1024];
    tmp_file(f16, sizeof f16, "base-f16.gguf");
    tmp_file(q8, sizeof q8, "base-q8_0.gguf");
    llmedge_quantize_options *qo = NULL;
    CHECK_STATUS(llmedge_quantize_options_new("Q9_X", 4, &qo), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(qo == NULL);
    CHECK_OK(llmedge_quantize_options_new("f16", 3, &qo));
    CHECK_OK(llmedge_quantize_options_set_threads(qo, 2));
    char *report = NULL;
    size_t rlen = 0;
    /* The base is Q4_1: requantizing must be asked for. */
    CHECK_STATUS(llmedge_quantize(model_path, strlen(model_path), f16, strlen(f16), qo, NULL, NULL, &report, &rlen),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(llmedge_last_error(NULL), "allow_requantize") != NULL);
    CHECK(report == NULL && access(f16, F_OK) != 0);
    CHECK_OK(llmedge_quantize_options_set_allow_requantize(qo, true));
    struct progress p = {0, 0, 0, true};
    CHECK_OK(llmedge_quantize(model_path, strlen(model_path), f16, strlen(f16), qo, on_progress, &p, &report, &rlen));
    CHECK(strstr(report, "\"file_type\":\"F16\"") != NULL);
    llmedge_string_free(report);
    CHECK(p.calls > 0 && p.monotonic && p.last_done == p.last_total);
    llmedge_quantize_options_free(qo);

    /* A tensor override whose pattern is not a regex is refused. */
    CHECK_OK(llmedge_quantize_options_new("Q8_0", 4, &qo));
    CHECK_OK(llmedge_quantize_options_set_pure(qo, true));
    CHECK_OK(llmedge_quantize_options_add_keep(qo, "(", 1, "q8_0", 4));
    CHECK_STATUS(llmedge_quantize(f16, strlen(f16), q8, strlen(q8), qo, NULL, NULL, &report, &rlen),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    llmedge_quantize_options_free(qo);
    CHECK_OK(llmedge_quantize_options_new("Q8_0", 4, &qo));
    CHECK_OK(llmedge_quantize_options_set_threads(qo, 2));
    /* F16 -> Q8_0 needs no requantize; an override that agrees with the type is harmless. */
    CHECK_OK(llmedge_quantize_options_add_keep(qo, "token_embd", 10, "q8_0", 4));
    CHECK_OK(llmedge_quantize(f16, strlen(f16), q8, strlen(q8), qo, NULL, NULL, &report, &rlen));
    CHECK(strstr(report, "\"file_type\":\"Q8_0\"") != NULL);
    llmedge_string_free(report);
    llmedge_quantize_options_free(qo);
    CHECK(unlink(f16) == 0);

    llmedge_model *m = load_model(q8);
    char *info = NULL;
    size_t ilen = 0;
    CHECK_OK(llmedge_model_info_json(m, &info, &ilen));
    CHECK(strstr(info, "Q8_0") != NULL);
    llmedge_string_free(info);
    llmedge_session *s = session_with(m, NULL, 0);
    llmedge_generate_options *o = greedy();
    char *t = gen(s, PROMPTS[0], o);
    CHECK(strlen(t) > 0);
    free(t);
    llmedge_generate_options_free(o);
    llmedge_session_free(s);
    llmedge_model_free(m);
    CHECK(unlink(q8) == 0);
}

static void test_perplexity(void) {
    char text[8192] = "";
    for (int i = 0; i < 40; i++) strcat(text, "The quick brown fox jumps over the lazy dog. ");
    llmedge_eval_options *eo = llmedge_eval_options_new();
    CHECK(eo != NULL);
    CHECK_OK(llmedge_eval_options_set_n_ctx(eo, 64));
    CHECK_OK(llmedge_eval_options_set_threads(eo, 2));
    double ppl = 0;
    CHECK_OK(llmedge_model_perplexity(g_model, text, strlen(text), eo, &ppl));
    CHECK(isfinite(ppl) && ppl > 1.0);
    /* Repetition is easy: the model learns it in context. */
    CHECK(ppl < 20.0);

    CHECK_OK(llmedge_eval_options_set_max_chunks(eo, 1));
    double one = 0;
    CHECK_OK(llmedge_model_perplexity(g_model, text, strlen(text), eo, &one));
    CHECK(isfinite(one) && one > 1.0);

    char path[1024];
    llmedge_lora *a = load_lora(g_model, fixture(path, sizeof path, "lora_smollm2_a.gguf"));
    CHECK_OK(llmedge_eval_options_add_lora(eo, a, 1.0f));
    double with_a = 0;
    CHECK_OK(llmedge_model_perplexity(g_model, text, strlen(text), eo, &with_a));
    CHECK(isfinite(with_a) && with_a > 1.0 && with_a != one);
    llmedge_lora_free(a);

    /* Too short for the context; a context below 16. */
    double untouched = -1;
    CHECK_STATUS(llmedge_model_perplexity(g_model, "short", 5, eo, &untouched), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(llmedge_eval_options_set_n_ctx(eo, 8));
    CHECK_STATUS(llmedge_model_perplexity(g_model, text, strlen(text), eo, &untouched),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(untouched == -1);
    llmedge_eval_options_free(eo);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_PATH LORA_FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    g_fixtures = argv[2];
    g_model_path = argv[1];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/llmedge-lora-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    CHECK(mkdtemp(g_tmp) != NULL);
    g_model = load_model(argv[1]);

    test_load_and_info();
    test_runtime_switching();
    test_merge(argv[1]);
    test_import(argv[1]);
    test_quantize(argv[1]);
    test_perplexity();

    for (int i = 0; i < 2; i++) {
        free(g_base[i]);
        free(g_with_a[i]);
    }
    llmedge_model_free(g_model);
    CHECK(rmdir(g_tmp) == 0);
    printf("test_lora: all checks passed\n");
    return 0;
}
