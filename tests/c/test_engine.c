/* The serving engine and session state files through the C ABI, on the real default model.
 * The reference for every engine output is the same request run alone on a fresh session.
 * Usage: test_engine MODEL_PATH */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#define S(lit) lit, (sizeof(lit) - 1)
#define N_CTX 512

static llmedge_model *g_model;

static const char *const QUESTIONS[] = {
    "What is the capital of France?",   "Name three colours of the rainbow.",
    "Write one sentence about the sea.", "What is 12 times 12?",
    "Give a synonym for happy.",         "Why do hospitals keep records?",
};
#define N_QUESTIONS (sizeof QUESTIONS / sizeof QUESTIONS[0])

static llmedge_session_options *session_options(void) {
    llmedge_session_options *so = llmedge_session_options_new();
    CHECK(so != NULL);
    CHECK_OK(llmedge_session_options_set_n_ctx(so, N_CTX));
    return so;
}

static llmedge_generate_options *greedy(uint32_t max_tokens) {
    llmedge_generate_options *o = llmedge_generate_options_new();
    CHECK(o != NULL);
    CHECK_OK(llmedge_generate_options_set_greedy(o, true));
    CHECK_OK(llmedge_generate_options_set_max_tokens(o, max_tokens));
    return o;
}

static llmedge_chat_messages *ask(const char *question) {
    llmedge_chat_messages *m = llmedge_chat_messages_new();
    CHECK(m != NULL);
    CHECK_OK(llmedge_chat_messages_add(m, S("user"), question, strlen(question)));
    return m;
}

static llmedge_engine *new_engine(uint32_t slots, uint32_t max_queue) {
    llmedge_session_options *so = session_options();
    llmedge_engine_options *eo = llmedge_engine_options_new();
    CHECK(eo != NULL);
    CHECK_OK(llmedge_engine_options_set_session_options(eo, so));
    llmedge_session_options_free(so); /* copied */
    CHECK_OK(llmedge_engine_options_set_slots(eo, slots));
    CHECK_OK(llmedge_engine_options_set_max_queue(eo, max_queue));
    llmedge_engine *e = NULL;
    CHECK_OK(llmedge_engine_new(g_model, eo, &e));
    llmedge_engine_options_free(eo);
    return e;
}

/* A request's tokens alone on a fresh session: the chat for even i, the raw text for odd i. */
struct tokens {
    int32_t ids[128];
    size_t n;
};

static void copy_tokens(const llmedge_completion *c, struct tokens *out) {
    const int32_t *t;
    CHECK_OK(llmedge_completion_tokens(c, &t, &out->n));
    CHECK(out->n <= 128);
    memcpy(out->ids, t, out->n * sizeof(int32_t));
}

static bool same_tokens(const llmedge_completion *c, const struct tokens *want) {
    const int32_t *t;
    size_t n;
    CHECK_OK(llmedge_completion_tokens(c, &t, &n));
    return n == want->n && memcmp(t, want->ids, n * sizeof(int32_t)) == 0;
}

static void alone(size_t i, const llmedge_generate_options *o, struct tokens *out) {
    llmedge_session_options *so = session_options();
    llmedge_session *s = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &s));
    llmedge_session_options_free(so);
    llmedge_completion *c = NULL;
    if (i % 2 == 0) {
        llmedge_chat_messages *m = ask(QUESTIONS[i]);
        CHECK_OK(llmedge_session_chat(s, m, o, NULL, NULL, &c));
        llmedge_chat_messages_free(m);
    } else {
        CHECK_OK(llmedge_session_generate(s, QUESTIONS[i], strlen(QUESTIONS[i]), o, NULL, NULL, &c));
    }
    copy_tokens(c, out);
    CHECK(out->n > 0);
    llmedge_completion_free(c);
    llmedge_session_free(s);
}

/* What the callbacks of one request saw; they run on the scheduler thread. */
struct seen {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    char text[8192];
    size_t len;
    int pieces;
    int stop_after; /* on_piece returns false on this piece (0 = never) */
    int done_calls;
    llmedge_status done_status;
    bool done_had_completion;
    char done_text[8192];
    size_t done_len;
    char done_error[256];
    llmedge_status wait_in_callback;
    llmedge_status shutdown_in_callback;
    llmedge_engine *engine;
    llmedge_request *request; /* set by the submitting thread */
    pthread_t piece_thread;
};

static void seen_init(struct seen *s) {
    memset(s, 0, sizeof *s);
    CHECK(pthread_mutex_init(&s->lock, NULL) == 0);
    CHECK(pthread_cond_init(&s->changed, NULL) == 0);
}

static void seen_destroy(struct seen *s) {
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
}

static bool on_piece(const char *piece, size_t len, void *user_data) {
    struct seen *s = user_data;
    pthread_mutex_lock(&s->lock);
    CHECK(len > 0 && s->len + len < sizeof s->text);
    memcpy(s->text + s->len, piece, len);
    s->len += len;
    s->pieces++;
    s->piece_thread = pthread_self();
    bool more = s->stop_after == 0 || s->pieces < s->stop_after;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return more;
}

static void on_done(llmedge_status status, const llmedge_completion *c, void *user_data) {
    struct seen *s = user_data;
    pthread_mutex_lock(&s->lock);
    s->done_calls++;
    s->done_status = status;
    s->done_had_completion = c != NULL;
    if (c != NULL) {
        const char *text;
        CHECK_OK(llmedge_completion_text(c, &text, &s->done_len));
        CHECK(s->done_len < sizeof s->done_text);
        memcpy(s->done_text, text, s->done_len);
    } else {
        snprintf(s->done_error, sizeof s->done_error, "%s", llmedge_last_error(NULL));
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

/* An on_piece that also tries what a callback must not do: wait for its own request, shut
 * the engine down. Both must be refused instead of deadlocking the scheduler thread. */
static bool on_piece_misbehaving(const char *piece, size_t len, void *user_data) {
    struct seen *s = user_data;
    pthread_mutex_lock(&s->lock);
    while (s->request == NULL) pthread_cond_wait(&s->changed, &s->lock);
    llmedge_request *request = s->request;
    bool first = s->pieces == 0;
    pthread_mutex_unlock(&s->lock);
    if (first) {
        llmedge_completion *out = NULL;
        s->wait_in_callback = llmedge_request_wait(request, &out);
        CHECK(out == NULL);
        s->shutdown_in_callback = llmedge_engine_shutdown(s->engine, true);
    }
    return on_piece(piece, len, user_data);
}

static void wait_for_pieces(struct seen *s, int n) {
    pthread_mutex_lock(&s->lock);
    while (s->pieces < n && s->done_calls == 0) pthread_cond_wait(&s->changed, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

static llmedge_finish_reason finish(const llmedge_completion *c) {
    llmedge_finish_reason why;
    CHECK_OK(llmedge_completion_finish_reason(c, &why));
    return why;
}

/* The number under "name" in a JSON object of counters (the caller frees `json`). */
static uint64_t json_u64(const char *json, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(json, key);
    CHECK(at != NULL);
    return strtoull(at + strlen(key), NULL, 10);
}

static uint64_t stat(llmedge_engine *e, const char *name) {
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(llmedge_engine_stats_json(e, &json, &len));
    CHECK(strlen(json) == len);
    uint64_t v = json_u64(json, name);
    llmedge_string_free(json);
    return v;
}

static void test_concurrent_requests_equal_each_run_alone(void) {
    llmedge_generate_options *o = greedy(24);
    /* A raw prompt may well end at once: always generate 24 tokens. */
    CHECK_OK(llmedge_generate_options_set_ignore_eos(o, true));
    struct tokens want[N_QUESTIONS];
    for (size_t i = 0; i < N_QUESTIONS; i++) alone(i, o, &want[i]);

    llmedge_engine *e = new_engine(4, 64);
    struct seen seen[N_QUESTIONS];
    llmedge_request *req[N_QUESTIONS];
    /* All at once: four run together, two wait for a free slot. */
    for (size_t i = 0; i < N_QUESTIONS; i++) {
        seen_init(&seen[i]);
        req[i] = NULL;
        if (i % 2 == 0) {
            llmedge_chat_messages *m = ask(QUESTIONS[i]);
            CHECK_OK(llmedge_engine_submit_chat(e, m, o, 0, on_piece, on_done, &seen[i], &req[i]));
            llmedge_chat_messages_free(m); /* copied */
        } else {
            CHECK_OK(llmedge_engine_submit(e, QUESTIONS[i], strlen(QUESTIONS[i]), o, 0, on_piece, on_done, &seen[i],
                                           &req[i]));
        }
        CHECK(req[i] != NULL);
    }
    uint64_t generated = 0;
    for (size_t i = 0; i < N_QUESTIONS; i++) {
        llmedge_completion *c = NULL;
        CHECK_OK(llmedge_request_wait(req[i], &c));
        bool done = false;
        CHECK_OK(llmedge_request_done(req[i], &done));
        CHECK(done);
        if (!same_tokens(c, &want[i])) {
            fprintf(stderr, "request %zu: batched tokens differ from the request alone\n", i);
            CHECK(0);
        }
        /* The callbacks ran once, on the scheduler thread, and saw the completion's text. */
        const char *text;
        size_t len;
        CHECK_OK(llmedge_completion_text(c, &text, &len));
        CHECK(seen[i].done_calls == 1 && seen[i].done_status == LLMEDGE_STATUS_OK && seen[i].done_had_completion);
        CHECK(seen[i].len == len && memcmp(seen[i].text, text, len) == 0);
        CHECK(seen[i].done_len == len && memcmp(seen[i].done_text, text, len) == 0);
        CHECK(seen[i].pieces > 0 && !pthread_equal(seen[i].piece_thread, pthread_self()));
        /* The request id is the completion's. */
        const char *id, *cid;
        size_t id_len, cid_len;
        CHECK_OK(llmedge_request_id(req[i], &id, &id_len));
        CHECK_OK(llmedge_completion_request_id(c, &cid, &cid_len));
        CHECK(id_len > 0 && id_len == cid_len && strcmp(id, cid) == 0);
        /* A second wait gives another copy of the same result. */
        llmedge_completion *again = NULL;
        CHECK_OK(llmedge_request_wait(req[i], &again));
        CHECK(again != c && same_tokens(again, &want[i]));
        llmedge_completion_free(again);
        uint32_t p, g;
        CHECK_OK(llmedge_completion_usage(c, &p, &g));
        generated += g;
        llmedge_completion_free(c);
        llmedge_request_free(req[i]);
        seen_destroy(&seen[i]);
    }
    CHECK(stat(e, "finished") == N_QUESTIONS && stat(e, "active") == 0 && stat(e, "queued") == 0);
    uint64_t steps = stat(e, "decode_steps");
    if (steps >= generated) {
        fprintf(stderr, "%llu steps for %llu tokens: nothing was batched\n", (unsigned long long)steps,
                (unsigned long long)generated);
        CHECK(0);
    }
    CHECK(stat(e, "slots") == 4);
    llmedge_generate_options_free(o);
    llmedge_engine_free(e);
}

struct canceller {
    llmedge_request *request;
    pthread_t thread;
};

static void *cancel_main(void *arg) {
    struct canceller *c = arg;
    CHECK_OK(llmedge_request_cancel(c->request));
    return NULL;
}

static void test_cancel_busy_and_timeout(void) {
    llmedge_engine *e = new_engine(1, 1);
    llmedge_generate_options *longo = greedy(300);
    CHECK_OK(llmedge_generate_options_set_ignore_eos(longo, true));
    struct seen running, queued, refused;
    seen_init(&running);
    seen_init(&queued);
    seen_init(&refused);
    llmedge_request *r_running = NULL, *r_queued = NULL, *r_refused = NULL;
    CHECK_OK(llmedge_engine_submit(e, S("Once upon a time"), longo, 0, on_piece, on_done, &running, &r_running));
    wait_for_pieces(&running, 1); /* it holds the only slot now */
    CHECK_OK(llmedge_engine_submit(e, S("Hello"), longo, 0, on_piece, on_done, &queued, &r_queued));
    /* The queue holds one: the next is refused at once, and nothing is called back. */
    CHECK_STATUS(llmedge_engine_submit(e, S("Hi"), longo, 0, on_piece, on_done, &refused, &r_refused),
                 LLMEDGE_STATUS_BUSY);
    CHECK(r_refused == NULL && strstr(llmedge_last_error(NULL), "busy") != NULL);
    CHECK(stat(e, "rejected_busy") == 1 && stat(e, "queued") == 1);

    /* Cancel the waiting request, then the running one from another thread. */
    CHECK_OK(llmedge_request_cancel(r_queued));
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_request_wait(r_queued, &c));
    uint32_t p, g;
    CHECK_OK(llmedge_completion_usage(c, &p, &g));
    CHECK(finish(c) == LLMEDGE_FINISH_CANCELLED && g == 0 && queued.pieces == 0 && queued.done_calls == 1);
    llmedge_completion_free(c);
    struct canceller k = {.request = r_running};
    CHECK(pthread_create(&k.thread, NULL, cancel_main, &k) == 0);
    CHECK(pthread_join(k.thread, NULL) == 0);
    CHECK_OK(llmedge_request_wait(r_running, &c));
    CHECK_OK(llmedge_completion_usage(c, &p, &g));
    CHECK(finish(c) == LLMEDGE_FINISH_CANCELLED && g > 0 && g < 300);
    const char *text;
    size_t len;
    CHECK_OK(llmedge_completion_text(c, &text, &len));
    CHECK(running.len == len && memcmp(running.text, text, len) == 0);
    llmedge_completion_free(c);
    CHECK(refused.done_calls == 0 && refused.pieces == 0);

    /* A deadline while generating ends the request with TIMEOUT, in on_done and in wait. */
    struct seen late;
    seen_init(&late);
    llmedge_request *r_late = NULL;
    CHECK_OK(llmedge_engine_submit(e, S("Once upon a time"), longo, 300, on_piece, on_done, &late, &r_late));
    c = NULL;
    CHECK_STATUS(llmedge_request_wait(r_late, &c), LLMEDGE_STATUS_TIMEOUT);
    CHECK(c == NULL && strstr(llmedge_last_error(NULL), "deadline") != NULL);
    CHECK(late.done_calls == 1 && late.done_status == LLMEDGE_STATUS_TIMEOUT && !late.done_had_completion);
    CHECK(strstr(late.done_error, "deadline") != NULL);
    CHECK(stat(e, "timed_out") == 1);

    /* A callback returning false keeps exactly the pieces it accepted. */
    struct seen stopper;
    seen_init(&stopper);
    stopper.stop_after = 3;
    llmedge_request *r_stop = NULL;
    CHECK_OK(llmedge_engine_submit(e, S("Once upon a time"), longo, 0, on_piece, on_done, &stopper, &r_stop));
    CHECK_OK(llmedge_request_wait(r_stop, &c));
    CHECK_OK(llmedge_completion_text(c, &text, &len));
    CHECK(finish(c) == LLMEDGE_FINISH_CANCELLED && stopper.pieces == 3);
    CHECK(stopper.len == len && memcmp(stopper.text, text, len) == 0);
    llmedge_completion_free(c);

    /* Inside a callback, waiting and shutting down are refused instead of deadlocking. */
    struct seen odd;
    seen_init(&odd);
    odd.engine = e;
    llmedge_request *r_odd = NULL;
    llmedge_generate_options *shorto = greedy(4);
    CHECK_OK(llmedge_generate_options_set_ignore_eos(shorto, true));
    CHECK_OK(llmedge_engine_submit(e, S("Hello"), shorto, 0, on_piece_misbehaving, on_done, &odd, &r_odd));
    pthread_mutex_lock(&odd.lock);
    odd.request = r_odd;
    pthread_cond_broadcast(&odd.changed);
    pthread_mutex_unlock(&odd.lock);
    CHECK_OK(llmedge_request_wait(r_odd, &c));
    CHECK(odd.wait_in_callback == LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(odd.shutdown_in_callback == LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(odd.done_calls == 1 && odd.done_status == LLMEDGE_STATUS_OK);
    llmedge_completion_free(c);
    /* The engine still serves. */
    CHECK_OK(llmedge_engine_submit(e, S("Hello"), shorto, 0, NULL, NULL, NULL, NULL));

    llmedge_request *all[] = {r_running, r_queued, r_late, r_stop, r_odd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) llmedge_request_free(all[i]);
    struct seen *seens[] = {&running, &queued, &refused, &late, &stopper, &odd};
    for (size_t i = 0; i < sizeof seens / sizeof seens[0]; i++) seen_destroy(seens[i]);
    llmedge_generate_options_free(shorto);
    llmedge_generate_options_free(longo);
    llmedge_engine_free(e);
}

static void test_shutdown_and_free(void) {
    llmedge_generate_options *o = greedy(8);
    CHECK_OK(llmedge_generate_options_set_ignore_eos(o, true));
    struct tokens want;
    alone(1, o, &want);
    /* Drain: what was submitted finishes as it would alone; later submissions are closed. */
    llmedge_engine *e = new_engine(1, 8);
    llmedge_request *a = NULL;
    CHECK_OK(llmedge_engine_submit(e, QUESTIONS[1], strlen(QUESTIONS[1]), o, 0, NULL, NULL, NULL, &a));
    CHECK_OK(llmedge_engine_shutdown(e, true));
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_request_wait(a, &c));
    CHECK(same_tokens(c, &want));
    llmedge_completion_free(c);
    CHECK_STATUS(llmedge_engine_submit(e, S("Hi"), o, 0, NULL, NULL, NULL, NULL), LLMEDGE_STATUS_CLOSED);
    CHECK_OK(llmedge_engine_shutdown(e, false)); /* idempotent */
    llmedge_engine_free(e);
    llmedge_request_free(a);

    /* Free with requests in flight: each gets its on_done (cancelled) before free returns, and
     * the handles outlive the engine. */
    e = new_engine(1, 8);
    llmedge_generate_options *longo = greedy(400);
    CHECK_OK(llmedge_generate_options_set_ignore_eos(longo, true));
    struct seen s1, s2;
    seen_init(&s1);
    seen_init(&s2);
    llmedge_request *r1 = NULL;
    CHECK_OK(llmedge_engine_submit(e, S("Once upon a time"), longo, 0, on_piece, on_done, &s1, &r1));
    CHECK_OK(llmedge_engine_submit(e, S("Hello"), longo, 0, on_piece, on_done, &s2, NULL)); /* no handle */
    wait_for_pieces(&s1, 1);
    llmedge_engine_free(e);
    CHECK(s1.done_calls == 1 && s2.done_calls == 1);
    CHECK(s1.done_status == LLMEDGE_STATUS_OK && s2.done_status == LLMEDGE_STATUS_OK);
    CHECK_OK(llmedge_request_wait(r1, &c));
    CHECK(finish(c) == LLMEDGE_FINISH_CANCELLED);
    llmedge_completion_free(c);
    llmedge_request_free(r1);
    seen_destroy(&s1);
    seen_destroy(&s2);
    llmedge_generate_options_free(longo);
    llmedge_generate_options_free(o);

    /* Bad engine options are refused when the engine is created. */
    llmedge_engine_options *eo = llmedge_engine_options_new();
    CHECK_OK(llmedge_engine_options_set_slots(eo, 0));
    CHECK_STATUS(llmedge_engine_new(g_model, eo, &e), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(llmedge_engine_options_set_slots(eo, 2));
    CHECK_OK(llmedge_engine_options_set_adapter_quantum(eo, 0));
    CHECK_STATUS(llmedge_engine_new(g_model, eo, &e), LLMEDGE_STATUS_INVALID_ARGUMENT);
    llmedge_engine_options_free(eo);
}

/* A cache-hit answer is the model's answer, counted in both the engine's and the cache's
 * stats; one cache serves two engines; sampled requests without a seed are never cached. */
static llmedge_completion *submit_wait(llmedge_engine *e, const char *prompt, const llmedge_generate_options *o) {
    llmedge_request *r = NULL;
    CHECK_OK(llmedge_engine_submit(e, prompt, strlen(prompt), o, 0, NULL, NULL, NULL, &r));
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_request_wait(r, &c));
    llmedge_request_free(r);
    return c;
}

static uint64_t cache_stat(const llmedge_response_cache *cache, const char *name) {
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(llmedge_response_cache_stats_json(cache, &json, &len));
    CHECK(strstr(json, "\"backend\":\"memory\"") != NULL);
    uint64_t v = json_u64(json, name);
    llmedge_string_free(json);
    return v;
}

static void test_response_cache(void) {
    llmedge_response_cache *cache = NULL;
    CHECK_STATUS(llmedge_response_cache_new_memory(0, 60000, &cache), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(cache == NULL);
    CHECK_STATUS(llmedge_response_cache_new_memory(16, 60000, NULL), LLMEDGE_STATUS_NULL_ARG);
    CHECK_STATUS(llmedge_response_cache_new_redis(S("not a url"), NULL, 0, 60000, 200, &cache), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(llmedge_response_cache_new_memory(16, 60000, &cache));
    llmedge_engine *engines[2];
    for (int i = 0; i < 2; i++) {
        llmedge_session_options *so = session_options();
        llmedge_engine_options *eo = llmedge_engine_options_new();
        CHECK_OK(llmedge_engine_options_set_session_options(eo, so));
        llmedge_session_options_free(so);
        CHECK_OK(llmedge_engine_options_set_slots(eo, 1));
        CHECK_OK(llmedge_engine_options_set_response_cache(eo, cache, false));
        CHECK_STATUS(llmedge_engine_options_set_response_cache(NULL, cache, false), LLMEDGE_STATUS_NULL_ARG);
        CHECK_OK(llmedge_engine_new(g_model, eo, &engines[i]));
        llmedge_engine_options_free(eo);
    }
    llmedge_generate_options *o = greedy(12);
    struct tokens want;
    alone(1, o, &want);
    llmedge_completion *first = submit_wait(engines[0], QUESTIONS[1], o);
    CHECK(same_tokens(first, &want));
    CHECK(stat(engines[0], "response_cache_hits") == 0 && cache_stat(cache, "misses") == 1);
    /* The second engine finds the first one's answer: same text and tokens, no decoding. */
    uint64_t steps = stat(engines[1], "decode_steps");
    llmedge_completion *hit = submit_wait(engines[1], QUESTIONS[1], o);
    CHECK(same_tokens(hit, &want));
    const char *t1, *t2;
    size_t n1, n2;
    CHECK_OK(llmedge_completion_text(first, &t1, &n1));
    CHECK_OK(llmedge_completion_text(hit, &t2, &n2));
    CHECK(n1 == n2 && memcmp(t1, t2, n1) == 0);
    CHECK(stat(engines[1], "response_cache_hits") == 1 && stat(engines[1], "decode_steps") == steps);
    CHECK(cache_stat(cache, "hits") == 1);
    llmedge_completion_free(first);
    llmedge_completion_free(hit);
    /* The engines hold their own reference: the handle may go first. */
    llmedge_response_cache_free(cache);
    llmedge_response_cache_free(NULL);
    llmedge_generate_options *sampled = llmedge_generate_options_new();
    CHECK_OK(llmedge_generate_options_set_max_tokens(sampled, 4));
    for (int i = 0; i < 2; i++) llmedge_completion_free(submit_wait(engines[0], QUESTIONS[2], sampled));
    CHECK(stat(engines[0], "response_cache_hits") == 0);
    llmedge_completion *again = submit_wait(engines[0], QUESTIONS[1], o);
    CHECK(same_tokens(again, &want) && stat(engines[0], "response_cache_hits") == 1);
    llmedge_completion_free(again);
    llmedge_generate_options_free(sampled);
    llmedge_generate_options_free(o);
    for (int i = 0; i < 2; i++) llmedge_engine_free(engines[i]);
}

static llmedge_completion *chat_turn(llmedge_session *s, llmedge_chat_messages *history) {
    llmedge_generate_options *o = greedy(16);
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_chat(s, history, o, NULL, NULL, &c));
    llmedge_generate_options_free(o);
    return c;
}

static void add_reply(llmedge_chat_messages *history, const llmedge_completion *c, const char *next) {
    const char *text;
    size_t len;
    CHECK_OK(llmedge_completion_text(c, &text, &len));
    CHECK_OK(llmedge_chat_messages_add(history, S("assistant"), text, len));
    CHECK_OK(llmedge_chat_messages_add(history, S("user"), next, strlen(next)));
}

static void write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void test_session_state(void) {
    char dir_template[] = "/tmp/llmedge-state-XXXXXX";
    char *dir = mkdtemp(dir_template);
    CHECK(dir != NULL);
    char path[256], corrupt[256], truncated[256], missing[256];
    snprintf(path, sizeof path, "%s/conversation.kv", dir);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.kv", dir);
    snprintf(truncated, sizeof truncated, "%s/truncated.kv", dir);
    snprintf(missing, sizeof missing, "%s/missing.kv", dir);

    llmedge_session_options *so = session_options();
    llmedge_session *s = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &s));
    llmedge_chat_messages *history = ask(QUESTIONS[0]);
    llmedge_completion *first = chat_turn(s, history);
    uint32_t first_prompt, g, cached;
    CHECK_OK(llmedge_completion_usage(first, &first_prompt, &g));
    CHECK_OK(llmedge_completion_cached_prompt_tokens(first, &cached));
    CHECK(cached == 0);
    /* The next turn reuses the KV of the first: its prompt and reply. */
    add_reply(history, first, "And of Italy?");
    llmedge_completion *second = chat_turn(s, history);
    CHECK_OK(llmedge_completion_cached_prompt_tokens(second, &cached));
    CHECK(cached >= first_prompt);
    uint32_t second_prompt;
    CHECK_OK(llmedge_completion_usage(second, &second_prompt, &g));
    CHECK_OK(llmedge_session_save_state(s, path, strlen(path)));
    add_reply(history, second, "And of Spain?");
    /* The reference: the original session continuing from the same KV. */
    llmedge_completion *continued = chat_turn(s, history);
    uint32_t continued_cached;
    CHECK_OK(llmedge_completion_cached_prompt_tokens(continued, &continued_cached));

    llmedge_session *restored = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &restored));
    size_t n = 0;
    CHECK_OK(llmedge_session_load_state(restored, path, strlen(path), &n));
    CHECK(n >= second_prompt);
    llmedge_completion *third = chat_turn(restored, history);
    CHECK_OK(llmedge_completion_cached_prompt_tokens(third, &cached));
    CHECK(cached == continued_cached && cached + 2 >= n);
    struct tokens want;
    copy_tokens(continued, &want);
    CHECK(same_tokens(third, &want));

    /* A flipped byte, a truncated file and a missing file are refused; n is not written. */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *bytes = malloc((size_t)size);
    CHECK(bytes != NULL && fread(bytes, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    write_bytes(truncated, bytes, 100);
    bytes[size / 2] ^= 0x40;
    write_bytes(corrupt, bytes, (size_t)size);
    free(bytes);
    size_t untouched = 12345;
    CHECK_STATUS(llmedge_session_load_state(restored, corrupt, strlen(corrupt), &untouched), LLMEDGE_STATUS_STATE);
    CHECK(untouched == 12345 && strstr(llmedge_last_error(NULL), "corrupt") != NULL);
    CHECK_STATUS(llmedge_session_load_state(restored, truncated, strlen(truncated), &untouched),
                 LLMEDGE_STATUS_STATE);
    CHECK_STATUS(llmedge_session_load_state(restored, missing, strlen(missing), &untouched), LLMEDGE_STATUS_IO);
    CHECK(untouched == 12345);
    /* After a refusal the session starts from an empty cache and still answers as alone. */
    llmedge_chat_messages *fresh = ask(QUESTIONS[1]);
    llmedge_completion *again = chat_turn(restored, fresh);
    CHECK_OK(llmedge_completion_cached_prompt_tokens(again, &cached));
    CHECK(cached == 0);
    llmedge_generate_options *o16 = greedy(16);
    struct tokens alone_tokens;
    llmedge_session *plain = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &plain));
    llmedge_completion *ref = NULL;
    CHECK_OK(llmedge_session_chat(plain, fresh, o16, NULL, NULL, &ref));
    copy_tokens(ref, &alone_tokens);
    CHECK(same_tokens(again, &alone_tokens));

    /* prefix_reuse off: the same request twice evaluates the whole prompt twice. */
    CHECK_OK(llmedge_session_options_set_prefix_reuse(so, false));
    llmedge_session *noreuse = NULL;
    CHECK_OK(llmedge_session_new(g_model, so, &noreuse));
    llmedge_completion *n1 = chat_turn(noreuse, fresh), *n2 = chat_turn(noreuse, fresh);
    CHECK_OK(llmedge_completion_cached_prompt_tokens(n2, &cached));
    CHECK(cached == 0);

    llmedge_completion *cs[] = {first, second, continued, third, again, ref, n1, n2};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) llmedge_completion_free(cs[i]);
    llmedge_session_free(noreuse);
    llmedge_session_free(plain);
    llmedge_session_free(restored);
    llmedge_session_free(s);
    llmedge_generate_options_free(o16);
    llmedge_chat_messages_free(fresh);
    llmedge_chat_messages_free(history);
    llmedge_session_options_free(so);
    unlink(path);
    unlink(corrupt);
    unlink(truncated);
    rmdir(dir);
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    llmedge_model_options *mo = llmedge_model_options_new();
    CHECK_OK(llmedge_model_options_set_threads(mo, 2));
    CHECK_OK(llmedge_model_load(argv[1], strlen(argv[1]), mo, &g_model));
    llmedge_model_options_free(mo);
    CHECK(strcmp(llmedge_status_name(LLMEDGE_STATUS_BUSY), "busy") == 0);
    CHECK(strcmp(llmedge_status_name(LLMEDGE_STATUS_TIMEOUT), "timeout") == 0);
    CHECK(strcmp(llmedge_status_name(LLMEDGE_STATUS_STATE), "state") == 0);
    test_concurrent_requests_equal_each_run_alone();
    test_cancel_busy_and_timeout();
    test_shutdown_and_free();
    test_response_cache();
    test_session_state();
    llmedge_model_free(g_model);
    printf("test_engine: all checks passed\n");
    return 0;
}
