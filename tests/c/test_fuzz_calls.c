/* C ABI robustness: a seeded random driver over the real library and the real default model.
 * Each step picks an API function at random and calls it with random arguments drawn from a
 * small pool of live handles (or NULL), random strings (NULL, NULL with huge lengths, empty,
 * random bytes with invalid UTF-8 and embedded NULs, long text, meaningful values), random
 * numbers (NaN, inf, negative, 0, huge) and random NULL out-pointers. Generations are short and
 * are cancelled at random points, by a callback returning false and from a second thread.
 *
 * Properties checked on every call:
 *  - the status is a declared llmedge_status (and never LLMEDGE_STATUS_PANIC);
 *  - a NULL required pointer gives LLMEDGE_STATUS_NULL_ARG;
 *  - on failure llmedge_last_error is non-empty, NUL-terminated at its length, valid UTF-8,
 *    and every out-parameter still holds the sentinel it was pre-filled with;
 *  - on success returned strings are NUL-terminated valid UTF-8, numbers are in range,
 *    streamed pieces are non-empty valid UTF-8 and stop after the callback returns false.
 * Handles are only freed once and only by their owner (the ABI does not survive double frees);
 * input buffers are malloc'd at their exact length so AddressSanitizer catches over-reads.
 *
 * Usage: test_fuzz_calls MODEL_PATH LORA_FIXTURES_DIR [ITERATIONS [SEED]]
 * (or LLMEDGE_FUZZ_ITERATIONS / LLMEDGE_FUZZ_SEED in the environment). The seed is printed;
 * rerun with it to reproduce a failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* ---------------------------------------------------------------- run state, failure report */

static uint64_t g_seed, g_rng;
static long g_step;
static const char *g_op = "setup";
static char g_tmp[256];

static void fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "test_fuzz_calls: FAILED at seed=%" PRIu64 " step=%ld op=%s: ", g_seed, g_step, g_op);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  reproduce: test_fuzz_calls MODEL LORA_DIR %ld %" PRIu64 "\n", g_step + 1, g_seed);
    exit(1);
}

/* xorshift64* */
static uint64_t rnd(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ULL;
}
static uint32_t below(uint32_t n) { return n ? (uint32_t)(rnd() % n) : 0; }
static bool chance(uint32_t percent) { return below(100) < percent; }

/* ---------------------------------------------------------------- checks */

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

static const int VALID_STATUS[] = {0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 20, 21, 22, 23, 30, 31, 32,
                                   33, 34, 40, 41, 42, 50, 51, 52, 60, 70, 71, 72, 98, 99};
#define N_VALID (sizeof VALID_STATUS / sizeof VALID_STATUS[0])
static long g_status_count[100];
static long g_calls;
static long g_null_other; /* NULL required pointer reported as another argument error */
static bool g_strict_null;
#ifdef FUZZ_TOLERATE_NUL_LEN
static long g_nul_len;
#endif

/* Checks every call's status; `null_arg` = a required pointer was NULL. */
static llmedge_status chk(llmedge_status st, bool null_arg) {
    int v = (int)st;
    bool known = false;
    for (size_t i = 0; i < N_VALID; i++) known |= VALID_STATUS[i] == v;
    if (!known) fail("status %d is not a declared llmedge_status", v);
    g_calls++;
    g_status_count[v]++;
    if (st == LLMEDGE_STATUS_PANIC) fail("internal panic: %s", llmedge_last_error(NULL));
    /* Arguments are checked in order, so an earlier bad argument (invalid UTF-8, bad JSON) may
     * be reported instead of a later NULL: a NULL must give an error, NULL_ARG only when it is
     * the only bad argument (LLMEDGE_FUZZ_STRICT_NULL=1 demands NULL_ARG always). */
    if (null_arg && st == LLMEDGE_STATUS_OK) fail("a required pointer was NULL but the call succeeded");
    if (null_arg && st != LLMEDGE_STATUS_NULL_ARG) {
        g_null_other++;
        if (g_strict_null)
            fail("a required pointer was NULL but the status is %d (%s): %s", v, llmedge_status_name(v),
                 llmedge_last_error(NULL));
    }
    if (st != LLMEDGE_STATUS_OK) {
        size_t n = (size_t)0x5e5e5e5e;
        const char *m = llmedge_last_error(&n);
        if (m == NULL || n == 0 || n == (size_t)0x5e5e5e5e) fail("status %d with an empty last_error", v);
        if (memchr(m, 0, n) != NULL || m[n] != 0) fail("last_error is not NUL-terminated at its length %zu", n);
        if (!valid_utf8((const unsigned char *)m, n)) fail("last_error is not valid UTF-8");
        const char *name = llmedge_status_name(v);
        if (name == NULL || strcmp(name, "unknown") == 0) fail("no status name for %d", v);
    }
    return st;
}

#define SENT_PTR ((void *)(uintptr_t)0x5e17e1)
#define SENT_LEN ((size_t)0x5e17e15e17e1ULL)
#define SENT_U32 0x5e17e1u

/* A returned string: NUL-terminated valid UTF-8 of `n` bytes. */
static void chk_out_str(const char *s, size_t n, bool may_be_null) {
    if (s == SENT_PTR || n == SENT_LEN) fail("success without writing the out-string");
    if (s == NULL) {
        if (!may_be_null || n != 0) fail("success with a NULL string");
        return;
    }
#ifdef FUZZ_TOLERATE_NUL_LEN
    if (s[n] != 0 && strlen(s) > n) { g_nul_len++; n = strlen(s); }
#endif
    if (s[n] != 0) fail("returned string not NUL-terminated at its length %zu (strlen %zu)", n, strlen(s));
    if (!valid_utf8((const unsigned char *)s, n)) fail("returned string (%zu bytes) is not valid UTF-8", n);
}

/* ---------------------------------------------------------------- input arena */

static void *g_arena[64];
static int g_n_arena;
static void *arena_alloc(size_t n) {
    if (g_n_arena == 64) fail("test arena full");
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    g_arena[g_n_arena++] = p;
    return p;
}
static void arena_reset(void) {
    for (int i = 0; i < g_n_arena; i++) free(g_arena[i]);
    g_n_arena = 0;
}

typedef struct {
    const char *p;
    size_t n;
} str_t;

/* A copy at its exact length (no NUL: the library must honour the length). */
static str_t dup_exact(const char *s, size_t n) {
    char *p = arena_alloc(n);
    memcpy(p, s, n);
    return (str_t){p, n};
}

static void rand_utf8(char *p, size_t n) {
    static const char *const pieces[] = {"a", "Z", " ", "\n", "{", "}", "\xc3\xa9", "\xe4\xb8\xad",
                                         "\xf0\x9f\x99\x82", "<|im_end|>", "\"", "\\", "0", "%s"};
    size_t i = 0;
    while (i < n) {
        const char *pc = pieces[below(sizeof pieces / sizeof pieces[0])];
        size_t l = strlen(pc);
        if (i + l > n) { p[i++] = 'x'; continue; }
        memcpy(p + i, pc, l);
        i += l;
    }
}

/* A random string argument; `dict` gives meaningful values for the parameter. */
static str_t gen_str(const char *const *dict, size_t n_dict) {
    uint32_t r = below(100);
    if (r < 6) return (str_t){NULL, 0};
    if (r < 9) return (str_t){NULL, SIZE_MAX};
    if (r < 11) return (str_t){NULL, (size_t)rnd()};
    if (r < 16) return (str_t){arena_alloc(0), 0};
    if (r < 26) { /* random bytes: invalid UTF-8 and NULs likely */
        size_t n = 1 + below(48);
        char *p = arena_alloc(n);
        for (size_t i = 0; i < n; i++) p[i] = (char)below(256);
        return (str_t){p, n};
    }
    if (r < 34) { /* valid UTF-8, maybe with an embedded NUL */
        size_t n = 1 + below(64);
        char *p = arena_alloc(n);
        rand_utf8(p, n);
        if (chance(30)) p[below((uint32_t)n)] = 0;
        return (str_t){p, n};
    }
    if (r < 37) { /* long text */
        size_t n = 500 + below(2500);
        char *p = arena_alloc(n);
        rand_utf8(p, n);
        return (str_t){p, n};
    }
    if (dict == NULL || n_dict == 0) return (str_t){"x", 1};
    const char *w = dict[below((uint32_t)n_dict)];
    str_t s = dup_exact(w, strlen(w));
    if (s.n > 0 && chance(10)) ((char *)s.p)[below((uint32_t)s.n)] = (char)(0x80 + below(64)); /* break UTF-8 */
    if (s.n > 1 && chance(5)) s.n = below((uint32_t)s.n);                                      /* truncate */
    return s;
}
#define GEN(dict) gen_str(dict, sizeof dict / sizeof dict[0])

/* A path: a meaningful file, or random bytes as a name inside the temporary folder (never
 * outside: '/' is replaced), or a NULL/empty/huge-length argument. */
static const char *g_paths[32];
static size_t g_n_paths;
static const char *g_out_paths[5];
/* A path the library may write to: only inside the temporary folder (never the model or the
 * fixtures). */
static str_t gen_out_path(void) {
    if (chance(60)) {
        const char *p = g_out_paths[below(5)];
        return dup_exact(p, strlen(p));
    }
    uint32_t r = below(100);
    if (r < 70) {
        size_t base = strlen(g_tmp) + 1, n = base + 1 + below(24);
        char *p = arena_alloc(n);
        memcpy(p, g_tmp, base - 1);
        p[base - 1] = '/';
        for (size_t i = base; i < n; i++) {
            char c = (char)(chance(50) ? 'a' + below(26) : below(256));
            p[i] = c == '/' || c == '.' ? '_' : c;
        }
        return (str_t){p, n};
    }
    if (r < 90) return gen_str(NULL, 0); /* NULL, huge length, empty, relative names (cwd is the temporary folder) */
    return (str_t){NULL, 0};
}

static str_t gen_path(void) {
    uint32_t r = below(100);
    if (r < 60) {
        const char *p = g_paths[below((uint32_t)g_n_paths)];
        return dup_exact(p, strlen(p));
    }
    if (r < 80) {
        size_t base = strlen(g_tmp) + 1, n = base + 1 + below(24);
        char *p = arena_alloc(n);
        memcpy(p, g_tmp, base - 1);
        p[base - 1] = '/';
        for (size_t i = base; i < n; i++) {
            char c = (char)(chance(50) ? 'a' + below(26) : below(256));
            p[i] = c == '/' || c == '.' ? '_' : c;
        }
        return (str_t){p, n};
    }
    return gen_str(NULL, 0);
}

static float gen_float(void) {
    switch (below(12)) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return -1.0f;
    case 4: return 0.0f;
    case 5: return 1e30f;
    case 6: return -0.0f;
    case 7: return 2.0f;
    default: return (float)below(1000) / 500.0f;
    }
}
static uint32_t gen_u32(void) {
    static const uint32_t v[] = {0, 1, 2, 3, 8, 16, 64, 512, UINT32_MAX, 0x80000000u, 1u << 30};
    return chance(70) ? v[below(sizeof v / sizeof v[0])] : (uint32_t)rnd();
}
static int32_t gen_i32(void) {
    static const int32_t v[] = {0, 1, -1, 2, 5, 40, 64, INT32_MAX, INT32_MIN, 49151, 49152};
    return chance(80) ? v[below(sizeof v / sizeof v[0])] : (int32_t)rnd();
}

/* ---------------------------------------------------------------- dictionaries */

static const char *const D_ROLE[] = {"system", "user", "assistant", "tool", "USER", ""};
static const char *const D_PROMPT[] = {
    "The capital of France is", "Hello", "1 2 3 4",
    "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n",
    "My email is john.smith@example.com and my phone is 13812345678",
    "\xe8\xaf\xb7\xe7\x94\xa8\xe4\xb8\xad\xe6\x96\x87\xe5\x9b\x9e\xe7\xad\x94", "<|endoftext|>", "{\"a\":"};
static const char *const D_TEMPLATE_NAME[] = {"chatml", "llama3", "zephyr", "nope",
                                              "{% for m in messages %}{{ m.content }}{% endfor %}",
                                              "{{", "{% if %}"};
static const char *const D_SCHEMA[] = {
    "{}", "{\"type\":\"string\"}", "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}",
    "{\"type\":", "[]", "{\"enum\":[\"x\",\"y\"]}", "{\"$ref\":\"#/nope\"}", "{\"type\":\"integer\",\"minimum\":5,\"maximum\":2}",
    "{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"maxItems\":2}", "null", "{\"type\":\"nonsense\"}"};
static const char *const D_REGEX[] = {"[a-z]+", "(?=a)b", "a{1000}", "(", "\\d{3}", ".*", "yes|no", ""};
static const char *const D_GRAMMAR[] = {"root ::= \"a\"", "root ::= [a-z]+", "root ::=", "x ::= \"a\"",
                                        "root ::= root", "root ::= \"\"", "root ::= [^\\x00]*"};
static const char *const D_SHORT[] = {"t1", "", "tenant with space", "a-b_c", "\xe7\xa7\x9f\xe6\x88\xb7", "req-1"};
static const char *const D_STOP[] = {".", "\n", "the", " ", "<|im_end|>", ","};
static const char *const D_CHOICE[] = {"yes", "no", "Paris", " ", "\xe6\x98\xaf"};
static const char *const D_VARS[] = {"{}", "{\"a\":\"x\"}", "{\"a\":1}", "[1]", "null", "{",
                                     "{\"query\":\"2+2?\",\"role\":\"nurse\"}", "{\"question\":\"why?\"}",
                                     "{\"name\":\"Bob\",\"a\":\"b\",\"b\":\"c\"}"};
static const char *const D_TOML[] = {"name = \"t\"\ntemplate = \"{a}\"\n", "name = \"t\"\n", "=",
                                     "name = \"x\"\ntemplate = \"{q}\"\nsystem = \"be brief\"\n[defaults]\nq = \"hi\"\n",
                                     "[[templates]]\nname = \"a\"\ntemplate = \"{b}\"\n",
                                     "name = \"j\"\nformat = \"jinja\"\ntemplate = \"{{ x }}\"\n"};
static const char *const D_TPL_TEXT[] = {"{a}", "Hello {name}!", "{{ x }}", "{", "}", "{{", "{% if a %}y{% endif %}",
                                         "{a}{b}", "Answer: {question}", "{{ a"};
static const char *const D_LIB_NAME[] = {"role_en", "cot_en", "cot_zh", "few_shot_en", "extract_fields_en",
                                         "insurance_claim_review_zh", "nope", "mine"};
static const char *const D_QTYPE[] = {"Q4_K_M", "Q8_0", "F16", "q4_0", "bogus", "IQ2_XXS", "f32"};
static const char *const D_OUT_TYPE[] = {"f32", "f16", "q8_0", "q4_0", "bogus", "Q4_K"};
static const char *const D_KEEP[] = {"token_embd", "(", ".*", "blk\\.0\\..*"};
static const char *const D_ANSWER[] = {"Reasoning...\nAnswer: 42", "\xe7\xad\x94\xe6\xa1\x88\xef\xbc\x9a\xe5\x9b\x9b",
                                       "no answer", "Answer:", "Answer: a\nAnswer: b"};
static const char *const D_SAFETY[] = {"how are you", "My SSN is 123-45-6789, card 6222021234567890123",
                                       "\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81 110101199003071234", "kill", "mail a@b.co"};

/* ---------------------------------------------------------------- handle pools */

#define NP 4
static llmedge_model *P_model[NP]; /* [0]: the real model, kept for the whole run */
static llmedge_model_options *P_mopt[NP];
static llmedge_session_options *P_sopt[NP];
static llmedge_generate_options *P_gopt[NP];
static uint32_t P_gmax[NP]; /* shadow max_tokens of P_gopt */
static llmedge_chat_messages *P_msgs[NP];
static llmedge_session *P_sess[NP];
static llmedge_completion *P_comp[NP];
static llmedge_prompt_template *P_tpl[NP];
static llmedge_template_library *P_lib[NP];
static llmedge_safety *P_safety[NP];
static llmedge_lora *P_lora[NP];
static llmedge_merge_options *P_mergeo[NP];
static llmedge_quantize_options *P_qo[NP];
static llmedge_eval_options *P_eo[NP];
#define NE 2 /* engines hold a scheduler thread and a context each: keep few */
static llmedge_engine *P_eng[NE];
static llmedge_engine_options *P_engo[NP];
static llmedge_request *P_req[NP];
#define NS 8
static char *P_str[NS];
static size_t P_strlen[NS];
static llmedge_token *P_tok[NP];
static size_t P_toklen[NP];
static bool P_tok_live[NP]; /* an empty token array may be a non-NULL dangling pointer */
static float *P_flt[2];
static size_t P_fltlen[2];

static uint32_t g_n_vocab, g_n_embd, g_n_ctx_train;

/* Index of a random live slot, or -1. */
#define LIVE_IDX(pool, n, out)                                          \
    do {                                                                \
        int s_ = (int)below(n);                                         \
        (out) = -1;                                                     \
        for (int k_ = 0; k_ < (n); k_++) {                              \
            int j_ = (s_ + k_) % (n);                                   \
            if ((pool)[j_]) { (out) = j_; break; }                      \
        }                                                               \
    } while (0)
/* A random live handle, or (sometimes, or when none) NULL. */
#define PICK(pool, var)                                                 \
    do {                                                                \
        int i_;                                                         \
        LIVE_IDX(pool, NP, i_);                                         \
        (var) = (i_ < 0 || chance(8)) ? NULL : (pool)[i_];              \
    } while (0)
/* A free slot, freeing a random victim with `freefn` when the pool is full. */
#define SLOT(pool, n, freefn, out)                                      \
    do {                                                                \
        (out) = -1;                                                     \
        for (int k_ = 0; k_ < (n); k_++) if (!(pool)[k_]) { (out) = k_; break; } \
        if ((out) < 0) {                                                \
            (out) = (int)below(n);                                      \
            freefn((pool)[out]);                                        \
            (pool)[out] = NULL;                                         \
        }                                                               \
    } while (0)

static void put_string(char *s, size_t n) {
    int i = -1;
    for (int k = 0; k < NS; k++) if (!P_str[k]) { i = k; break; }
    if (i < 0) {
        i = (int)below(NS);
        llmedge_string_free(P_str[i]);
    }
    P_str[i] = s;
    P_strlen[i] = n;
}

/* A text argument: sometimes a string the library returned earlier (as input). */
static str_t gen_text(const char *const *dict, size_t n_dict) {
    if (chance(15)) {
        int i;
        LIVE_IDX(P_str, NS, i);
        if (i >= 0) return (str_t){P_str[i], P_strlen[i]};
    }
    return gen_str(dict, n_dict);
}
#define GEN_TEXT(dict) gen_text(dict, sizeof dict / sizeof dict[0])

/* Prompts are kept short (a prefix of the real buffer) so that steps stay fast. */
static str_t short_text(str_t t) {
    if (t.p && t.n > 160) t.n = 160 + below(40);
    return t;
}

/* Token ids: from the pool, random ids in and out of range, or NULL / empty / huge length. */
typedef struct {
    const llmedge_token *p;
    size_t n;
} toks_t;
static toks_t gen_tokens(void) {
    uint32_t r = below(100);
    if (r < 6) return (toks_t){NULL, 0};
    if (r < 10) return (toks_t){NULL, chance(50) ? SIZE_MAX : (size_t)rnd()};
    if (r < 14) return (toks_t){arena_alloc(0), 0};
    if (r < 50) {
        int i;
        LIVE_IDX(P_tok_live, NP, i);
        if (i >= 0) return (toks_t){P_tok[i], P_toklen[i]};
    }
    size_t n = 1 + below(24);
    llmedge_token *t = arena_alloc(n * sizeof *t);
    bool bad = chance(30);
    for (size_t i = 0; i < n; i++) t[i] = (llmedge_token)below(g_n_vocab);
    if (bad) t[below((uint32_t)n)] = chance(50) ? gen_i32() : (llmedge_token)g_n_vocab;
    return (toks_t){t, n};
}

/* ---------------------------------------------------------------- generation helpers */

struct cb_state {
    const llmedge_session *session;
    int pieces;
    int stop_at;        /* return false on this piece (0 = never) */
    int cancel_at;      /* call llmedge_session_cancel from inside the callback (0 = never) */
    bool reenter;       /* call other (thread-safe) API functions from inside */
    bool returned_false;
    int after_false;
};

static bool piece_cb(const char *piece, size_t len, void *user_data) {
    struct cb_state *st = user_data;
    if (piece == NULL || len == 0) fail("callback got an empty piece");
    if (!valid_utf8((const unsigned char *)piece, len)) fail("callback got invalid UTF-8 (%zu bytes)", len);
    if (st->returned_false) st->after_false++;
    st->pieces++;
    if (st->cancel_at && st->pieces == st->cancel_at) chk(llmedge_session_cancel(st->session), false);
    if (st->reenter) {
        llmedge_token *t = SENT_PTR;
        size_t n = SENT_LEN;
        if (chk(llmedge_model_tokenize(P_model[0], piece, len, false, false, &t, &n), false) == LLMEDGE_STATUS_OK)
            llmedge_tokens_free(t, n);
        (void)llmedge_status_name((int32_t)below(100));
    }
    if (st->stop_at && st->pieces >= st->stop_at) {
        st->returned_false = true;
        return false;
    }
    return true;
}

struct canceller {
    pthread_t thread;
    const llmedge_session *session;
    unsigned delay_us;
    bool repeat;
    volatile int done;
    pthread_mutex_t mu;
};

static void *cancel_main(void *arg) {
    struct canceller *c = arg;
    struct timespec ts = {0, (long)c->delay_us * 1000L};
    nanosleep(&ts, NULL);
    for (;;) {
        llmedge_status st = llmedge_session_cancel(c->session);
        if (st != LLMEDGE_STATUS_OK) {
            fprintf(stderr, "test_fuzz_calls: cancel from a thread returned %d\n", (int)st);
            abort();
        }
        pthread_mutex_lock(&c->mu);
        int done = c->done;
        pthread_mutex_unlock(&c->mu);
        if (done || !c->repeat) break;
        struct timespec again = {0, 2000000L};
        nanosleep(&again, NULL);
    }
    return NULL;
}

/* Long generations (options NULL = 256 tokens, max_tokens 0 or > 8) always get a thread that
 * cancels repeatedly until they end; the others get one at a random point now and then. */
static bool start_canceller(struct canceller *c, const llmedge_session *s, const llmedge_generate_options *o) {
    bool long_gen = true;
    for (int i = 0; i < NP; i++)
        if (o && P_gopt[i] == o) long_gen = P_gmax[i] == 0 || P_gmax[i] > 8;
    if (s == NULL || (!long_gen && !chance(25))) return false;
    c->session = s;
    c->delay_us = below(long_gen ? 30000 : 15000);
    c->repeat = long_gen;
    c->done = 0;
    pthread_mutex_init(&c->mu, NULL);
    CHECK(pthread_create(&c->thread, NULL, cancel_main, c) == 0);
    return true;
}
static void stop_canceller(struct canceller *c, bool started) {
    if (!started) return;
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    pthread_mutex_unlock(&c->mu);
    CHECK(pthread_join(c->thread, NULL) == 0);
    pthread_mutex_destroy(&c->mu);
}

static void check_completion(llmedge_completion *c, const struct cb_state *cb) {
    const char *text = SENT_PTR;
    size_t n = SENT_LEN;
    chk(llmedge_completion_text(c, &text, &n), false);
    chk_out_str(text, n, false);
    const llmedge_token *t = SENT_PTR;
    size_t nt = SENT_LEN;
    chk(llmedge_completion_tokens(c, &t, &nt), false);
    if (t == SENT_PTR || nt == SENT_LEN || (nt > 0 && t == NULL)) fail("completion tokens not written");
    for (size_t i = 0; i < nt; i++)
        if (t[i] < 0 || (uint32_t)t[i] >= g_n_vocab) fail("completion token %d out of range", t[i]);
    uint32_t p = SENT_U32, g = SENT_U32;
    chk(llmedge_completion_usage(c, &p, &g), false);
    if (g != nt) fail("usage says %u generated tokens, tokens() gives %zu", g, nt);
    llmedge_finish_reason why = (llmedge_finish_reason)77;
    chk(llmedge_completion_finish_reason(c, &why), false);
    if ((int)why < 0 || (int)why > 3) fail("finish reason %d", (int)why);
    if (cb && cb->after_false > 0) fail("%d pieces streamed after the callback returned false", cb->after_false);
}

/* Store a new completion (freeing a random one when the pool is full). */
static void keep_completion(llmedge_completion *c) {
    int i;
    SLOT(P_comp, NP, llmedge_completion_free, i);
    P_comp[i] = c;
}

static void put_json(llmedge_status st, char *s, size_t n, bool may_be_null) {
    if (st == LLMEDGE_STATUS_OK) {
        chk_out_str(s, n, may_be_null);
        if (s) put_string(s, n);
    } else if (s != SENT_PTR || n != SENT_LEN) {
        fail("out-parameters written on failure");
    }
}

/* ---------------------------------------------------------------- operations */

typedef void (*op_fn)(void);

static void op_info(void) {
    (void)llmedge_abi_version();
    if (strcmp(llmedge_version(), LLMEDGE_VERSION_STRING) != 0) fail("version");
    const char *n = llmedge_status_name(gen_i32());
    if (n == NULL || !valid_utf8((const unsigned char *)n, strlen(n))) fail("status_name");
    size_t len = SENT_LEN;
    const char *m = llmedge_last_error(chance(50) ? NULL : &len);
    if (m == NULL) fail("last_error NULL");
}

static void op_model_load(void) {
    llmedge_model_options *mo;
    PICK(P_mopt, mo);
    str_t path = chance(50) ? dup_exact(g_paths[0], strlen(g_paths[0])) : gen_path();
    bool null_out = chance(5);
    llmedge_model *m = SENT_PTR;
    llmedge_status st = chk(llmedge_model_load(path.p, path.n, mo, null_out ? NULL : &m), path.p == NULL || null_out);
    if (st != LLMEDGE_STATUS_OK) {
        if (m != SENT_PTR) fail("model written on failure");
        return;
    }
    if (m == NULL || m == SENT_PTR) fail("model not written");
    int i = 1 + (int)below(NP - 1);
    llmedge_model_free(P_model[i]); /* sessions and adapters of it stay valid */
    P_model[i] = m;
}

static void op_model_free(void) {
    int i = 1 + (int)below(NP - 1);
    llmedge_model_free(P_model[i]);
    P_model[i] = NULL;
}

static void op_model_queries(void) {
    llmedge_model *m;
    PICK(P_model, m);
    uint32_t v = SENT_U32;
    bool null_out = chance(10);
    llmedge_status st;
    switch (below(4)) {
    case 0:
        st = chk(llmedge_model_n_vocab(m, null_out ? NULL : &v), !m || null_out);
        if (!st && v != g_n_vocab) fail("n_vocab %u", v);
        break;
    case 1:
        st = chk(llmedge_model_n_embd(m, null_out ? NULL : &v), !m || null_out);
        if (!st && v != g_n_embd) fail("n_embd %u", v);
        break;
    case 2:
        st = chk(llmedge_model_n_ctx_train(m, null_out ? NULL : &v), !m || null_out);
        if (!st && v != g_n_ctx_train) fail("n_ctx_train %u", v);
        break;
    default: {
        char *s = SENT_PTR;
        size_t n = SENT_LEN;
        bool ns = chance(5), nn = chance(5);
        st = chk(llmedge_model_info_json(m, ns ? NULL : &s, nn ? NULL : &n), !m || ns || nn);
        put_json(st, s, n, false);
        return;
    }
    }
    if (st && v != SENT_U32) fail("out written on failure");
}

static void op_tokenize(void) {
    llmedge_model *m;
    PICK(P_model, m);
    str_t t = GEN_TEXT(D_PROMPT);
    llmedge_token *toks = SENT_PTR;
    size_t n = SENT_LEN;
    bool nt = chance(5), nn = chance(5);
    llmedge_status st = chk(llmedge_model_tokenize(m, t.p, t.n, chance(50), chance(50), nt ? NULL : &toks, nn ? NULL : &n),
                            !m || !t.p || nt || nn);
    if (st) {
        if (toks != SENT_PTR || n != SENT_LEN) fail("written on failure");
        return;
    }
    if (toks == SENT_PTR || n == SENT_LEN || (n > 0 && toks == NULL)) fail("tokens not written");
    for (size_t i = 0; i < n; i++)
        if (toks[i] < 0 || (uint32_t)toks[i] >= g_n_vocab) fail("token %d out of range", toks[i]);
    int i;
    LIVE_IDX(P_tok_live, NP, i);
    int slot = -1;
    for (int k = 0; k < NP; k++) if (!P_tok_live[k]) { slot = k; break; }
    if (slot < 0) {
        slot = i;
        llmedge_tokens_free(P_tok[slot], P_toklen[slot]);
    }
    P_tok[slot] = toks;
    P_toklen[slot] = n;
    P_tok_live[slot] = true;
}

static void op_tokens_free(void) {
    int i;
    LIVE_IDX(P_tok_live, NP, i);
    if (i < 0) { llmedge_tokens_free(NULL, 0); return; }
    llmedge_tokens_free(P_tok[i], P_toklen[i]);
    P_tok[i] = NULL;
    P_toklen[i] = 0;
    P_tok_live[i] = false;
}

static void op_detokenize(void) {
    llmedge_model *m;
    PICK(P_model, m);
    toks_t t = gen_tokens();
    char *s = SENT_PTR;
    size_t n = SENT_LEN;
    bool ns = chance(5), nn = chance(5);
    llmedge_status st = chk(llmedge_model_detokenize(m, t.p, t.n, chance(50), ns ? NULL : &s, nn ? NULL : &n),
                            !m || !t.p || ns || nn);
    put_json(st, s, n, false);
}

static void op_embed(void) {
    llmedge_model *m;
    PICK(P_model, m);
    str_t t = GEN_TEXT(D_PROMPT);
    t = short_text(t);
    float *v = SENT_PTR;
    size_t n = SENT_LEN;
    bool nv = chance(5), nn = chance(5);
    llmedge_status st = chk(llmedge_model_embed(m, t.p, t.n, nv ? NULL : &v, nn ? NULL : &n), !m || !t.p || nv || nn);
    if (st) {
        if (v != SENT_PTR || n != SENT_LEN) fail("written on failure");
        return;
    }
    if (n != g_n_embd || v == NULL) fail("embedding of %zu floats", n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) fail("non-finite embedding");
    int i = (int)below(2);
    llmedge_floats_free(P_flt[i], P_fltlen[i]);
    P_flt[i] = v;
    P_fltlen[i] = n;
}

static void op_string_free(void) {
    int i = (int)below(NS);
    llmedge_string_free(P_str[i]);
    P_str[i] = NULL;
    if (chance(20)) {
        int j = (int)below(2);
        llmedge_floats_free(P_flt[j], P_fltlen[j]);
        P_flt[j] = NULL;
        P_fltlen[j] = 0;
    }
}

static void op_model_options(void) {
    llmedge_model_options *o;
    PICK(P_mopt, o);
    static const uint32_t limit[] = {0, 1, 2, 16, UINT32_MAX};
    switch (below(9)) {
    case 7: chk(llmedge_model_options_set_max_prompt_tokens(o, limit[below(5)]), !o); break;
    case 8: chk(llmedge_model_options_set_max_sessions(o, limit[below(5)]), !o); break;
    case 0: {
        int i;
        SLOT(P_mopt, NP, llmedge_model_options_free, i);
        P_mopt[i] = llmedge_model_options_new();
        if (!P_mopt[i]) fail("model_options_new NULL");
        break;
    }
    case 1: {
        int i = (int)below(NP);
        llmedge_model_options_free(P_mopt[i]);
        P_mopt[i] = NULL;
        break;
    }
    case 2: chk(llmedge_model_options_set_n_gpu_layers(o, gen_u32()), !o); break;
    case 3: chk(llmedge_model_options_set_use_mmap(o, chance(50)), !o); break;
    case 4: chk(llmedge_model_options_set_use_mlock(o, chance(10)), !o); break;
    case 5: {
        /* 0 and values that are negative as int are interesting; large valid counts are slow. */
        static const uint32_t th[] = {0, 1, 2, UINT32_MAX, 0x80000000u};
        chk(llmedge_model_options_set_threads(o, th[below(5)]), !o);
        break;
    }
    default: chk(llmedge_model_options_set_compute_sha256(o, chance(3)), !o); break;
    }
}

static void op_session_options(void) {
    llmedge_session_options *o;
    PICK(P_sopt, o);
    static const uint32_t ctx[] = {0, 1, 7, 8, 16, 32, 64, 128, 256, UINT32_MAX, 1u << 30};
    static const uint32_t th[] = {0, 1, 2, UINT32_MAX, 0x80000000u};
    switch (below(15)) {
    case 13: chk(llmedge_session_options_set_prefix_reuse(o, chance(50)), !o); break;
    case 0: {
        int i;
        SLOT(P_sopt, NP, llmedge_session_options_free, i);
        P_sopt[i] = llmedge_session_options_new();
        if (!P_sopt[i]) fail("session_options_new NULL");
        if (chance(95)) chk(llmedge_session_options_set_n_ctx(P_sopt[i], 64 + below(192)), false);
        break;
    }
    case 1: {
        int i = (int)below(NP);
        llmedge_session_options_free(P_sopt[i]);
        P_sopt[i] = NULL;
        break;
    }
    case 2: chk(llmedge_session_options_set_n_ctx(o, ctx[below(11)]), !o); break;
    case 3: chk(llmedge_session_options_set_n_batch(o, gen_u32()), !o); break;
    case 4: chk(llmedge_session_options_set_n_ubatch(o, gen_u32()), !o); break;
    case 5: chk(llmedge_session_options_set_threads(o, th[below(5)]), !o); break;
    case 6: chk(llmedge_session_options_set_threads_batch(o, th[below(5)]), !o); break;
    case 7: {
        str_t s = GEN(D_TEMPLATE_NAME);
        chk(llmedge_session_options_set_chat_template(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 8: {
        str_t s = gen_path();
        chk(llmedge_session_options_set_safety_policy(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 9: chk(llmedge_session_options_set_safety_enabled(o, chance(50)), !o); break;
    case 10: {
        str_t s = gen_out_path();
        chk(llmedge_session_options_set_audit_dir(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 11: {
        str_t s = GEN(D_SHORT);
        chk(llmedge_session_options_set_tenant(o, s.p, s.n), !o || !s.p);
        break;
    }
    default: {
        llmedge_lora *l;
        PICK(P_lora, l);
        chk(llmedge_session_options_add_lora(o, l, gen_float()), !o || !l);
        break;
    }
    }
}

static void op_generate_options(void) {
    int gi;
    LIVE_IDX(P_gopt, NP, gi);
    llmedge_generate_options *o = gi < 0 || chance(8) ? NULL : P_gopt[gi];
    switch (below(27)) {
    case 0: {
        int i;
        SLOT(P_gopt, NP, llmedge_generate_options_free, i);
        P_gopt[i] = llmedge_generate_options_new();
        if (!P_gopt[i]) fail("generate_options_new NULL");
        P_gmax[i] = 256;
        if (chance(80)) {
            P_gmax[i] = 1 + below(8);
            chk(llmedge_generate_options_set_max_tokens(P_gopt[i], P_gmax[i]), false);
        }
        break;
    }
    case 1: {
        int i = (int)below(NP);
        llmedge_generate_options_free(P_gopt[i]);
        P_gopt[i] = NULL;
        break;
    }
    case 2:
    case 3: {
        static const uint32_t mt[] = {0, 1, 2, 4, 8, 8, 3, UINT32_MAX, 1000};
        uint32_t v = mt[below(9)];
        if (chk(llmedge_generate_options_set_max_tokens(o, v), !o) == LLMEDGE_STATUS_OK) P_gmax[gi] = v;
        break;
    }
    case 4: chk(llmedge_generate_options_set_temperature(o, gen_float()), !o); break;
    case 5: chk(llmedge_generate_options_set_top_k(o, gen_i32()), !o); break;
    case 6: chk(llmedge_generate_options_set_top_p(o, gen_float()), !o); break;
    case 7: chk(llmedge_generate_options_set_min_p(o, gen_float()), !o); break;
    case 8: chk(llmedge_generate_options_set_repeat_penalty(o, gen_float()), !o); break;
    case 9: chk(llmedge_generate_options_set_frequency_penalty(o, gen_float()), !o); break;
    case 10: chk(llmedge_generate_options_set_presence_penalty(o, gen_float()), !o); break;
    case 11: chk(llmedge_generate_options_set_penalty_last_n(o, gen_i32()), !o); break;
    case 12: chk(llmedge_generate_options_set_seed(o, (uint32_t)rnd()), !o); break;
    case 13: chk(llmedge_generate_options_set_greedy(o, chance(50)), !o); break;
    case 14: chk(llmedge_generate_options_set_ignore_eos(o, chance(50)), !o); break;
    case 15: {
        int32_t t = chance(70) ? (int32_t)below(2) : gen_i32();
        llmedge_status st = chk(llmedge_generate_options_set_truncation(o, t), !o);
        if (o && (t == 0 || t == 1) != (st == LLMEDGE_STATUS_OK)) fail("truncation %d gave %d", t, (int)st);
        break;
    }
    case 16: chk(llmedge_generate_options_add_logit_bias(o, chance(70) ? (int32_t)below(g_n_vocab) : gen_i32(), gen_float()), !o); break;
    case 17: {
        str_t s = GEN(D_STOP);
        chk(llmedge_generate_options_add_stop(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 18: {
        str_t s = GEN(D_SCHEMA);
        chk(llmedge_generate_options_set_json_schema(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 19: {
        str_t s = GEN(D_CHOICE);
        chk(llmedge_generate_options_add_choice(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 20: {
        str_t s = GEN(D_REGEX);
        chk(llmedge_generate_options_set_regex(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 21: {
        str_t s = GEN(D_GRAMMAR);
        chk(llmedge_generate_options_set_grammar(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 22: {
        str_t s = GEN(D_SHORT);
        chk(llmedge_generate_options_set_request_id(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 23: {
        str_t s = GEN(D_SHORT);
        chk(llmedge_generate_options_set_tenant(o, s.p, s.n), !o || !s.p);
        break;
    }
    case 24:
    case 25: {
        llmedge_lora *l;
        PICK(P_lora, l);
        chk(llmedge_generate_options_add_lora(o, l, gen_float()), !o || !l);
        break;
    }
    default: chk(llmedge_generate_options_set_no_lora(o), !o); break;
    }
}

static void op_messages(void) {
    llmedge_chat_messages *m;
    PICK(P_msgs, m);
    switch (below(6)) {
    case 0: {
        int i;
        SLOT(P_msgs, NP, llmedge_chat_messages_free, i);
        P_msgs[i] = llmedge_chat_messages_new();
        if (!P_msgs[i]) fail("chat_messages_new NULL");
        break;
    }
    case 1: {
        int i = (int)below(NP);
        llmedge_chat_messages_free(P_msgs[i]);
        P_msgs[i] = NULL;
        break;
    }
    default: {
        str_t r = GEN(D_ROLE), c = short_text(GEN_TEXT(D_PROMPT));
        chk(llmedge_chat_messages_add(m, r.p, r.n, c.p, c.n), !m || !r.p || !c.p);
        break;
    }
    }
}

static void op_session_new(void) {
    llmedge_model *m;
    PICK(P_model, m);
    llmedge_session_options *o;
    PICK(P_sopt, o);
    if (o == NULL && chance(90)) return; /* default n_ctx 4096: allowed but kept rare */
    llmedge_session *s = SENT_PTR;
    bool null_out = chance(5);
    llmedge_status st = chk(llmedge_session_new(m, o, null_out ? NULL : &s), !m || null_out);
    if (st) {
        if (s != SENT_PTR) fail("session written on failure");
        return;
    }
    if (s == NULL || s == SENT_PTR) fail("session not written");
    int i;
    SLOT(P_sess, NP, llmedge_session_free, i);
    P_sess[i] = s;
}

static void op_session_free(void) {
    int i = (int)below(NP);
    llmedge_session_free(P_sess[i]);
    P_sess[i] = NULL;
}

static void op_session_cancel_idle(void) {
    llmedge_session *s;
    PICK(P_sess, s);
    chk(llmedge_session_cancel(s), !s);
    if (!s) return;
    /* A cancel while nothing runs has no effect on the next generation. */
    llmedge_generate_options *o = llmedge_generate_options_new();
    chk(llmedge_generate_options_set_max_tokens(o, 2), false);
    chk(llmedge_generate_options_set_greedy(o, true), false);
    chk(llmedge_generate_options_set_ignore_eos(o, true), false);
    llmedge_completion *c = SENT_PTR;
    llmedge_status st = chk(llmedge_session_generate(s, "Hello", 5, o, NULL, NULL, &c), false);
    if (st == LLMEDGE_STATUS_OK) {
        check_completion(c, NULL);
        llmedge_finish_reason why;
        chk(llmedge_completion_finish_reason(c, &why), false);
        if (why == LLMEDGE_FINISH_CANCELLED) fail("a cancel before the generation started cancelled it");
        keep_completion(c);
    } else if (c != SENT_PTR) {
        fail("completion written on failure");
    }
    llmedge_generate_options_free(o);
}

enum gen_kind { G_TEXT, G_TOKENS, G_CHAT, G_JSON, G_CHAT_JSON, G_TEMPLATE, G_DYNAMIC };

static void op_generate(void) {
    enum gen_kind kind = (enum gen_kind)below(7);
    llmedge_session *s;
    PICK(P_sess, s);
    llmedge_generate_options *o;
    PICK(P_gopt, o);
    struct cb_state cb = {s, 0, 0, 0, false, false, 0};
    bool use_cb = chance(60);
    if (use_cb) {
        cb.stop_at = chance(50) ? 1 + (int)below(6) : 0;
        cb.cancel_at = chance(20) ? 1 + (int)below(4) : 0;
        cb.reenter = chance(15);
    }
    void *ud = use_cb ? &cb : (chance(50) ? NULL : SENT_PTR); /* user_data unused without callback */
    llmedge_piece_callback fn = use_cb ? piece_cb : NULL;
    bool null_out = chance(4);
    struct canceller canc;
    bool started = start_canceller(&canc, s, o);
    llmedge_completion *c = SENT_PTR;
    char *js = SENT_PTR;
    size_t jn = SENT_LEN;
    bool null_len = chance(4);
    llmedge_status st;
    switch (kind) {
    case G_TEXT: {
        str_t p = short_text(GEN_TEXT(D_PROMPT));
        g_op = "session_generate";
        st = chk(llmedge_session_generate(s, p.p, p.n, o, fn, ud, null_out ? NULL : &c), !s || !p.p || null_out);
        break;
    }
    case G_TOKENS: {
        toks_t t = gen_tokens();
        g_op = "session_generate_tokens";
        st = chk(llmedge_session_generate_tokens(s, t.p, t.n, o, fn, ud, null_out ? NULL : &c), !s || !t.p || null_out);
        break;
    }
    case G_CHAT: {
        llmedge_chat_messages *m;
        PICK(P_msgs, m);
        g_op = "session_chat";
        st = chk(llmedge_session_chat(s, m, o, fn, ud, null_out ? NULL : &c), !s || !m || null_out);
        break;
    }
    case G_JSON: {
        str_t p = short_text(GEN_TEXT(D_PROMPT)), sc = GEN(D_SCHEMA);
        g_op = "session_generate_json";
        st = chk(llmedge_session_generate_json(s, p.p, p.n, sc.p, sc.n, o, null_out ? NULL : &c),
                 !s || !p.p || !sc.p || null_out);
        break;
    }
    case G_CHAT_JSON: {
        llmedge_chat_messages *m;
        PICK(P_msgs, m);
        str_t sc = GEN(D_SCHEMA);
        g_op = "session_chat_json";
        st = chk(llmedge_session_chat_json(s, m, sc.p, sc.n, o, null_out ? NULL : &c), !s || !m || !sc.p || null_out);
        break;
    }
    case G_TEMPLATE: {
        llmedge_prompt_template *t;
        PICK(P_tpl, t);
        str_t v = GEN(D_VARS);
        g_op = "session_run_template";
        st = chk(llmedge_session_run_template(s, t, v.p, v.n, o, null_out ? NULL : &js, null_len ? NULL : &jn),
                 !s || !t || null_out || null_len);
        break;
    }
    default: {
        llmedge_prompt_template *t;
        PICK(P_tpl, t);
        str_t r = short_text(GEN_TEXT(D_PROMPT));
        g_op = "session_run_dynamic";
        st = chk(llmedge_session_run_dynamic(s, t, r.p, r.n, o, null_out ? NULL : &js, null_len ? NULL : &jn),
                 !s || !t || !r.p || null_out || null_len);
        break;
    }
    }
    stop_canceller(&canc, started);
    if (use_cb && cb.after_false > 0) fail("%d pieces streamed after the callback returned false", cb.after_false);
    if (kind == G_TEMPLATE || kind == G_DYNAMIC) {
        put_json(st, js, jn, false);
        return;
    }
    if (st) {
        if (c != SENT_PTR) fail("completion written on failure");
        return;
    }
    if (c == NULL || c == SENT_PTR) fail("completion not written");
    check_completion(c, use_cb ? &cb : NULL);
    if (use_cb && cb.returned_false) {
        llmedge_finish_reason why;
        chk(llmedge_completion_finish_reason(c, &why), false);
        if (why != LLMEDGE_FINISH_CANCELLED && why != LLMEDGE_FINISH_CONTENT_FILTER)
            fail("the callback returned false but the finish reason is %d", (int)why);
    }
    keep_completion(c);
}

static void op_completion(void) {
    llmedge_completion *c;
    PICK(P_comp, c);
    bool n1 = chance(8), n2 = chance(8);
    switch (below(9)) {
    case 7: {
        uint32_t cached = SENT_U32, p = 0, g = 0;
        llmedge_status st = chk(llmedge_completion_cached_prompt_tokens(c, n1 ? NULL : &cached), !c || n1);
        if (st) {
            if (cached != SENT_U32) fail("written on failure");
        } else {
            chk(llmedge_completion_usage(c, &p, &g), false);
            if (cached > p) fail("%u cached prompt tokens of %u", cached, p);
        }
        break;
    }
    case 0: {
        const char *t = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = chk(llmedge_completion_text(c, n1 ? NULL : &t, n2 ? NULL : &n), !c || n1 || n2);
        if (st == LLMEDGE_STATUS_OK) chk_out_str(t, n, false);
        else if (t != SENT_PTR || n != SENT_LEN) fail("written on failure");
        break;
    }
    case 1: {
        const llmedge_token *t = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = chk(llmedge_completion_tokens(c, n1 ? NULL : &t, n2 ? NULL : &n), !c || n1 || n2);
        if (st && (t != SENT_PTR || n != SENT_LEN)) fail("written on failure");
        break;
    }
    case 2: {
        llmedge_finish_reason w = (llmedge_finish_reason)77;
        llmedge_status st = chk(llmedge_completion_finish_reason(c, n1 ? NULL : &w), !c || n1);
        if (st ? (int)w != 77 : ((int)w < 0 || (int)w > 3)) fail("finish reason %d", (int)w);
        break;
    }
    case 3: {
        uint32_t p = SENT_U32, g = SENT_U32;
        llmedge_status st = chk(llmedge_completion_usage(c, n1 ? NULL : &p, n2 ? NULL : &g), !c || n1 || n2);
        if (st && (p != SENT_U32 || g != SENT_U32)) fail("written on failure");
        break;
    }
    case 4: {
        int32_t which = chance(70) ? (int32_t)below(5) : gen_i32();
        double v = -12345.0;
        llmedge_status st = chk(llmedge_completion_timing(c, which, n1 ? NULL : &v), !c || n1);
        if (st == LLMEDGE_STATUS_OK && (isnan(v) || v < 0)) fail("timing %d = %f", which, v);
        if (st && v != -12345.0) fail("written on failure");
        if (c && !n1 && (which >= 0 && which <= 4) != (st == LLMEDGE_STATUS_OK)) fail("timing %d gave %d", which, (int)st);
        break;
    }
    case 5: {
        const char *t = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = chk(llmedge_completion_request_id(c, n1 ? NULL : &t, n2 ? NULL : &n), !c || n1 || n2);
        if (st == LLMEDGE_STATUS_OK) chk_out_str(t, n, false);
        else if (t != SENT_PTR || n != SENT_LEN) fail("written on failure");
        break;
    }
    case 6: {
        char *s = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = chk(llmedge_completion_safety_json(c, n1 ? NULL : &s, n2 ? NULL : &n), !c || n1 || n2);
        put_json(st, s, n, false);
        break;
    }
    default: {
        int i = (int)below(NP);
        llmedge_completion_free(P_comp[i]);
        P_comp[i] = NULL;
        break;
    }
    }
}

static void op_session_state(void) {
    llmedge_session *s;
    PICK(P_sess, s);
    if (chance(50)) {
        str_t p = chance(60) ? dup_exact(g_out_paths[1 + below(2)], strlen(g_out_paths[1 + below(2)])) : gen_out_path();
        g_op = "session_save_state";
        chk(llmedge_session_save_state(s, p.p, p.n), !s || !p.p);
        return;
    }
    str_t p = chance(50) ? dup_exact(g_out_paths[1 + below(2)], strlen(g_out_paths[1 + below(2)])) : gen_path();
    size_t n = SENT_LEN;
    bool null_out = chance(5);
    g_op = "session_load_state";
    llmedge_status st = chk(llmedge_session_load_state(s, p.p, p.n, null_out ? NULL : &n), !s || !p.p || null_out);
    if (st) {
        if (n != SENT_LEN) fail("n_tokens written on failure");
    } else if (n == SENT_LEN || n > (size_t)g_n_ctx_train) {
        fail("load_state restored %zu tokens", n);
    }
}

/* What one engine request's callbacks check; they run on the scheduler thread, so they use no
 * shared fuzzer state (chk counts calls). Freed by on_done, the request's last callback. */
struct ecb {
    int pieces;
    int stop_at;
    bool returned_false;
};

static bool engine_piece_cb(const char *piece, size_t len, void *user_data) {
    struct ecb *e = user_data;
    if (piece == NULL || len == 0) fail("engine callback got an empty piece");
    if (!valid_utf8((const unsigned char *)piece, len)) fail("engine callback got invalid UTF-8 (%zu bytes)", len);
    if (e->returned_false) fail("engine piece after the callback returned false");
    e->pieces++;
    if (e->stop_at && e->pieces >= e->stop_at) {
        e->returned_false = true;
        return false;
    }
    return true;
}

static void engine_done_cb(llmedge_status status, const llmedge_completion *c, void *user_data) {
    struct ecb *e = user_data;
    bool known = false;
    for (size_t i = 0; i < N_VALID; i++) known |= VALID_STATUS[i] == (int)status;
    if (!known || status == LLMEDGE_STATUS_PANIC) fail("on_done with status %d", (int)status);
    if ((status == LLMEDGE_STATUS_OK) != (c != NULL)) fail("on_done: status %d with completion %p", (int)status, (const void *)c);
    if (c) {
        const char *t = NULL;
        size_t n = 0;
        if (llmedge_completion_text(c, &t, &n) != LLMEDGE_STATUS_OK || t[n] != 0 || !valid_utf8((const unsigned char *)t, n))
            fail("on_done: bad completion text");
        llmedge_finish_reason why = LLMEDGE_FINISH_STOP;
        if (llmedge_completion_finish_reason(c, &why) != LLMEDGE_STATUS_OK) fail("on_done: finish reason");
        if (e->returned_false && why != LLMEDGE_FINISH_CANCELLED && why != LLMEDGE_FINISH_CONTENT_FILTER)
            fail("on_done: the callback returned false but the finish reason is %d", (int)why);
    } else {
        size_t n = 0;
        const char *m = llmedge_last_error(&n);
        if (n == 0 || m[n] != 0) fail("on_done: a failure without a message");
    }
    free(e);
}

static void op_engine_options(void) {
    llmedge_engine_options *o;
    PICK(P_engo, o);
    static const uint32_t slots[] = {0, 1, 2, 3, 3, 2, 257, UINT32_MAX};
    static const uint64_t ms[] = {0, 1, 5, 50, 1000, UINT64_MAX};
    switch (below(10)) {
    case 0: {
        int i;
        SLOT(P_engo, NP, llmedge_engine_options_free, i);
        P_engo[i] = llmedge_engine_options_new();
        if (!P_engo[i]) fail("engine_options_new NULL");
        if (chance(90)) chk(llmedge_engine_options_set_slots(P_engo[i], 1 + below(3)), false);
        break;
    }
    case 1: {
        int i = (int)below(NP);
        llmedge_engine_options_free(P_engo[i]);
        P_engo[i] = NULL;
        break;
    }
    case 2: {
        llmedge_session_options *so;
        PICK(P_sopt, so);
        chk(llmedge_engine_options_set_session_options(o, so), !o || !so);
        break;
    }
    case 3: chk(llmedge_engine_options_set_slots(o, slots[below(8)]), !o); break;
    case 4: chk(llmedge_engine_options_set_max_queue(o, chance(50) ? below(4) : gen_u32()), !o); break;
    case 5: chk(llmedge_engine_options_set_timeout_ms(o, ms[below(6)]), !o); break;
    case 6: chk(llmedge_engine_options_set_prefix_cache_bytes(o, chance(50) ? (uint64_t)below(1u << 24) : rnd()), !o); break;
    case 7: chk(llmedge_engine_options_set_prefix_cache_min_tokens(o, gen_u32()), !o); break;
    default: chk(llmedge_engine_options_set_adapter_quantum(o, chance(70) ? below(4) : gen_u32()), !o); break;
    }
}

static void op_engine(void) {
    int ei;
    LIVE_IDX(P_eng, NE, ei);
    llmedge_engine *e = ei < 0 || chance(8) ? NULL : P_eng[ei];
    switch (below(10)) {
    case 0: {
        llmedge_model *m;
        PICK(P_model, m);
        llmedge_engine_options *o;
        PICK(P_engo, o);
        if (o == NULL && chance(90)) return; /* defaults: 4 slots of n_ctx 4096, kept rare */
        llmedge_engine *out = SENT_PTR;
        bool null_out = chance(5);
        g_op = "engine_new";
        llmedge_status st = chk(llmedge_engine_new(m, o, null_out ? NULL : &out), !m || null_out);
        if (st) {
            if (out != SENT_PTR) fail("engine written on failure");
            return;
        }
        if (out == NULL || out == SENT_PTR) fail("engine not written");
        int i;
        SLOT(P_eng, NE, llmedge_engine_free, i);
        P_eng[i] = out;
        break;
    }
    case 1: {
        int i = (int)below(NE);
        g_op = "engine_free";
        llmedge_engine_free(P_eng[i]); /* cancels its requests; their handles stay valid */
        P_eng[i] = NULL;
        break;
    }
    case 2: {
        g_op = "engine_shutdown";
        /* Draining waits for every request: cancel the ones we hold first. */
        bool drain = chance(30);
        if (drain)
            for (int k = 0; k < NP; k++)
                if (P_req[k]) chk(llmedge_request_cancel(P_req[k]), false);
        chk(llmedge_engine_shutdown(e, drain), !e);
        break;
    }
    case 3: {
        char *s = SENT_PTR;
        size_t n = SENT_LEN;
        bool ns = chance(5), nn = chance(5);
        g_op = "engine_stats_json";
        llmedge_status st = chk(llmedge_engine_stats_json(e, ns ? NULL : &s, nn ? NULL : &n), !e || ns || nn);
        put_json(st, s, n, false);
        break;
    }
    default: {
        llmedge_generate_options *o;
        PICK(P_gopt, o);
        static const uint64_t ms[] = {0, 0, 0, 1, 20, 200, UINT64_MAX};
        uint64_t timeout = ms[below(7)];
        bool use_cb = chance(70), keep = chance(80);
        struct ecb *cb = NULL;
        if (use_cb) {
            cb = calloc(1, sizeof *cb);
            CHECK(cb != NULL);
            cb->stop_at = chance(40) ? 1 + (int)below(5) : 0;
        }
        llmedge_request *r = SENT_PTR;
        llmedge_request **out = keep ? &r : NULL;
        llmedge_status st;
        switch (below(3)) {
        case 0: {
            str_t p = short_text(GEN_TEXT(D_PROMPT));
            g_op = "engine_submit";
            st = chk(llmedge_engine_submit(e, p.p, p.n, o, timeout, use_cb ? engine_piece_cb : NULL,
                                           use_cb ? engine_done_cb : NULL, cb, out),
                     !e || !p.p);
            break;
        }
        case 1: {
            toks_t t = gen_tokens();
            g_op = "engine_submit_tokens";
            st = chk(llmedge_engine_submit_tokens(e, t.p, t.n, o, timeout, use_cb ? engine_piece_cb : NULL,
                                                  use_cb ? engine_done_cb : NULL, cb, out),
                     !e || !t.p);
            break;
        }
        default: {
            llmedge_chat_messages *m;
            PICK(P_msgs, m);
            g_op = "engine_submit_chat";
            st = chk(llmedge_engine_submit_chat(e, m, o, timeout, use_cb ? engine_piece_cb : NULL,
                                                use_cb ? engine_done_cb : NULL, cb, out),
                     !e || !m);
            break;
        }
        }
        if (st) {
            free(cb); /* refused at submission: no callback is ever called */
            if (r != SENT_PTR) fail("request written on failure");
            return;
        }
        if (!keep) return;
        if (r == NULL || r == SENT_PTR) fail("request not written");
        int i;
        SLOT(P_req, NP, llmedge_request_free, i);
        P_req[i] = r;
        break;
    }
    }
}

static void op_request(void) {
    llmedge_request *r;
    PICK(P_req, r);
    bool n1 = chance(8), n2 = chance(8);
    switch (below(6)) {
    case 0: g_op = "request_cancel"; chk(llmedge_request_cancel(r), !r); break;
    case 1: {
        const char *t = SENT_PTR;
        size_t n = SENT_LEN;
        g_op = "request_id";
        llmedge_status st = chk(llmedge_request_id(r, n1 ? NULL : &t, n2 ? NULL : &n), !r || n1 || n2);
        if (st == LLMEDGE_STATUS_OK) chk_out_str(t, n, false);
        else if (t != SENT_PTR || n != SENT_LEN) fail("written on failure");
        break;
    }
    case 2: {
        bool done = true;
        g_op = "request_done";
        llmedge_status st = chk(llmedge_request_done(r, n1 ? NULL : &done), !r || n1);
        if (st && !done) fail("written on failure");
        break;
    }
    case 3:
    case 4: {
        /* Wait (after a cancel, mostly, so that long generations do not slow the run down). */
        if (r && chance(80)) chk(llmedge_request_cancel(r), false);
        llmedge_completion *c = SENT_PTR;
        g_op = "request_wait";
        llmedge_status st = chk(llmedge_request_wait(r, n1 ? NULL : &c), !r || n1);
        if (st == LLMEDGE_STATUS_OK) {
            if (c == NULL || c == SENT_PTR) fail("completion not written");
            check_completion(c, NULL);
            keep_completion(c);
        } else if (c != SENT_PTR) {
            fail("completion written on failure");
        }
        break;
    }
    default: {
        int i = (int)below(NP);
        g_op = "request_free";
        llmedge_request_free(P_req[i]); /* the request goes on; its callbacks free their state */
        P_req[i] = NULL;
        break;
    }
    }
}

static void op_templates(void) {
    llmedge_prompt_template *t;
    PICK(P_tpl, t);
    char *s = SENT_PTR;
    size_t n = SENT_LEN;
    bool n1 = chance(5), n2 = chance(5);
    llmedge_status st;
    switch (below(8)) {
    case 0:
    case 1: {
        llmedge_prompt_template *nt = SENT_PTR;
        if (below(2)) {
            str_t name = GEN(D_SHORT), text = GEN(D_TPL_TEXT);
            /* Only declared formats: the parameter is a C enum (see the report on out-of-range values). */
            llmedge_template_format f = chance(50) ? LLMEDGE_TEMPLATE_FSTRING : LLMEDGE_TEMPLATE_JINJA;
            st = chk(llmedge_prompt_template_new(name.p, name.n, text.p, text.n, f, n1 ? NULL : &nt),
                     !name.p || !text.p || n1);
        } else {
            str_t toml = GEN(D_TOML);
            st = chk(llmedge_prompt_template_from_toml(toml.p, toml.n, n1 ? NULL : &nt), !toml.p || n1);
        }
        if (st) {
            if (nt != SENT_PTR) fail("template written on failure");
            return;
        }
        if (nt == NULL || nt == SENT_PTR) fail("template not written");
        int i;
        SLOT(P_tpl, NP, llmedge_prompt_template_free, i);
        P_tpl[i] = nt;
        return;
    }
    case 2: {
        int i = (int)below(NP);
        llmedge_prompt_template_free(P_tpl[i]);
        P_tpl[i] = NULL;
        return;
    }
    case 3:
        st = chk(llmedge_prompt_template_info_json(t, n1 ? NULL : &s, n2 ? NULL : &n), !t || n1 || n2);
        put_json(st, s, n, false);
        return;
    case 4: {
        str_t v = GEN(D_VARS);
        st = chk(llmedge_prompt_template_render(t, v.p, v.n, n1 ? NULL : &s, n2 ? NULL : &n), !t || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    case 5: {
        str_t v = GEN(D_VARS);
        st = chk(llmedge_prompt_template_messages_json(t, v.p, v.n, n1 ? NULL : &s, n2 ? NULL : &n), !t || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    default: {
        str_t x = GEN_TEXT(D_ANSWER);
        st = chk(llmedge_prompt_template_extract_answer(t, x.p, x.n, n1 ? NULL : &s, n2 ? NULL : &n), !t || !x.p || n1 || n2);
        put_json(st, s, n, true);
        return;
    }
    }
}

static void op_library(void) {
    llmedge_template_library *l;
    PICK(P_lib, l);
    bool n1 = chance(5), n2 = chance(5);
    switch (below(6)) {
    case 0:
    case 1: {
        llmedge_template_library *nl = SENT_PTR;
        llmedge_status st;
        if (below(2)) {
            st = chk(llmedge_template_library_builtin(n1 ? NULL : &nl), n1);
        } else {
            str_t d = gen_path();
            st = chk(llmedge_template_library_load_dir(d.p, d.n, n1 ? NULL : &nl), !d.p || n1);
        }
        if (st) {
            if (nl != SENT_PTR) fail("library written on failure");
            return;
        }
        if (nl == NULL || nl == SENT_PTR) fail("library not written");
        int i;
        SLOT(P_lib, NP, llmedge_template_library_free, i);
        P_lib[i] = nl;
        return;
    }
    case 2: {
        int i = (int)below(NP);
        llmedge_template_library_free(P_lib[i]);
        P_lib[i] = NULL;
        return;
    }
    case 3: {
        str_t d = gen_path();
        chk(llmedge_template_library_add_dir(l, d.p, d.n), !l || !d.p);
        return;
    }
    case 4: {
        char *s = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = chk(llmedge_template_library_names_json(l, n1 ? NULL : &s, n2 ? NULL : &n), !l || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    default: {
        str_t name = GEN(D_LIB_NAME);
        llmedge_prompt_template *t = SENT_PTR;
        llmedge_status st = chk(llmedge_template_library_get(l, name.p, name.n, n1 ? NULL : &t), !l || !name.p || n1);
        if (st) {
            if (t != SENT_PTR) fail("template written on failure");
            return;
        }
        int i;
        SLOT(P_tpl, NP, llmedge_prompt_template_free, i);
        P_tpl[i] = t;
        return;
    }
    }
}

static void op_safety(void) {
    llmedge_safety *sf;
    PICK(P_safety, sf);
    bool n1 = chance(5), n2 = chance(5);
    switch (below(6)) {
    case 0: {
        str_t p = chance(40) ? (str_t){NULL, chance(50) ? 0 : SIZE_MAX} : gen_path(); /* NULL = built-in policy */
        llmedge_safety *ns = SENT_PTR;
        llmedge_status st = chk(llmedge_safety_new(p.p, p.n, n1 ? NULL : &ns), n1);
        if (st) {
            if (ns != SENT_PTR) fail("safety written on failure");
            return;
        }
        int i;
        SLOT(P_safety, NP, llmedge_safety_free, i);
        P_safety[i] = ns;
        return;
    }
    case 1: {
        int i = (int)below(NP);
        llmedge_safety_free(P_safety[i]);
        P_safety[i] = NULL;
        return;
    }
    case 2:
    case 3:
    case 4: {
        str_t x = GEN_TEXT(D_SAFETY);
        char *s = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = below(2) ? llmedge_safety_check_input(sf, x.p, x.n, n1 ? NULL : &s, n2 ? NULL : &n)
                                     : llmedge_safety_check_output(sf, x.p, x.n, n1 ? NULL : &s, n2 ? NULL : &n);
        put_json(chk(st, !sf || !x.p || n1 || n2), s, n, false);
        return;
    }
    default: {
        str_t p = chance(60) ? dup_exact(g_out_paths[0], strlen(g_out_paths[0])) : gen_path();
        char *s = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = chk(llmedge_audit_verify(p.p, p.n, n1 ? NULL : &s, n2 ? NULL : &n), !p.p || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    }
}

static void op_lora(void) {
    bool n1 = chance(5), n2 = chance(5);
    switch (below(4)) {
    case 0:
    case 1: {
        llmedge_model *m;
        PICK(P_model, m);
        str_t p = gen_path();
        llmedge_lora *l = SENT_PTR;
        llmedge_status st = chk(llmedge_model_load_lora(m, p.p, p.n, n1 ? NULL : &l), !m || !p.p || n1);
        if (st) {
            if (l != SENT_PTR) fail("adapter written on failure");
            return;
        }
        int i;
        SLOT(P_lora, NP, llmedge_lora_free, i);
        P_lora[i] = l;
        return;
    }
    case 2: {
        int i = (int)below(NP);
        llmedge_lora_free(P_lora[i]);
        P_lora[i] = NULL;
        return;
    }
    default: {
        llmedge_lora *l;
        PICK(P_lora, l);
        char *s = SENT_PTR;
        size_t n = SENT_LEN;
        llmedge_status st = chk(llmedge_lora_info_json(l, n1 ? NULL : &s, n2 ? NULL : &n), !l || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    }
}

/* Report-producing tools: merge, import, quantize (paths never the real model as the input
 * to rewrite, to keep steps fast; outputs inside the temporary folder). */
static void op_tools(void) {
    bool n1 = chance(5), n2 = chance(5);
    char *s = SENT_PTR;
    size_t n = SENT_LEN;
    switch (below(10)) {
    case 0: {
        int i;
        SLOT(P_mergeo, NP, llmedge_merge_options_free, i);
        P_mergeo[i] = llmedge_merge_options_new();
        if (!P_mergeo[i]) fail("merge_options_new NULL");
        return;
    }
    case 1: {
        llmedge_merge_options *o;
        PICK(P_mergeo, o);
        if (below(2)) {
            str_t p = gen_path();
            chk(llmedge_merge_options_add_lora(o, p.p, p.n, gen_float()), !o || !p.p);
        } else {
            str_t t = GEN(D_OUT_TYPE);
            chk(llmedge_merge_options_set_out_type(o, t.p, t.n), !o || !t.p);
        }
        if (chance(20)) {
            int i = (int)below(NP);
            llmedge_merge_options_free(P_mergeo[i]);
            P_mergeo[i] = NULL;
        }
        return;
    }
    case 2: {
        llmedge_merge_options *o;
        PICK(P_mergeo, o);
        str_t base = gen_path(), out = gen_out_path();
        if (base.p && base.n == strlen(g_paths[0]) && memcmp(base.p, g_paths[0], base.n) == 0) base = out;
        llmedge_status st = chk(llmedge_lora_merge(base.p, base.n, out.p, out.n, o, NULL, NULL, n1 ? NULL : &s, n2 ? NULL : &n),
                                !base.p || !out.p || !o || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    case 3: {
        str_t peft = gen_path(), base = gen_path(), out = gen_out_path();
        llmedge_status st = chk(llmedge_lora_import(peft.p, peft.n, base.p, base.n, out.p, out.n, chance(50),
                                                    n1 ? NULL : &s, n2 ? NULL : &n),
                                !peft.p || !base.p || !out.p || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    case 4: {
        str_t t = GEN(D_QTYPE);
        llmedge_quantize_options *q = SENT_PTR;
        llmedge_status st = chk(llmedge_quantize_options_new(t.p, t.n, n1 ? NULL : &q), !t.p || n1);
        if (st) {
            if (q != SENT_PTR) fail("options written on failure");
            return;
        }
        int i;
        SLOT(P_qo, NP, llmedge_quantize_options_free, i);
        P_qo[i] = q;
        return;
    }
    case 5: {
        llmedge_quantize_options *q;
        PICK(P_qo, q);
        switch (below(5)) {
        case 0: chk(llmedge_quantize_options_set_allow_requantize(q, chance(50)), !q); break;
        case 1: chk(llmedge_quantize_options_set_threads(q, chance(50) ? below(3) : gen_u32()), !q); break;
        case 2: chk(llmedge_quantize_options_set_pure(q, chance(50)), !q); break;
        case 3: {
            str_t p = GEN(D_KEEP), t = GEN(D_OUT_TYPE);
            chk(llmedge_quantize_options_add_keep(q, p.p, p.n, t.p, t.n), !q || !p.p || !t.p);
            break;
        }
        default: {
            int i = (int)below(NP);
            llmedge_quantize_options_free(P_qo[i]);
            P_qo[i] = NULL;
        }
        }
        return;
    }
    case 6: {
        llmedge_quantize_options *q;
        PICK(P_qo, q);
        str_t in = gen_path(), out = gen_out_path();
        if (in.p && in.n == strlen(g_paths[0]) && memcmp(in.p, g_paths[0], in.n) == 0) in = out;
        llmedge_status st = chk(llmedge_quantize(in.p, in.n, out.p, out.n, q, NULL, NULL, n1 ? NULL : &s, n2 ? NULL : &n),
                                !in.p || !out.p || !q || n1 || n2);
        put_json(st, s, n, false);
        return;
    }
    case 7: {
        int i;
        SLOT(P_eo, NP, llmedge_eval_options_free, i);
        P_eo[i] = llmedge_eval_options_new();
        if (!P_eo[i]) fail("eval_options_new NULL");
        chk(llmedge_eval_options_set_n_ctx(P_eo[i], 16), false);
        chk(llmedge_eval_options_set_max_chunks(P_eo[i], 1), false);
        return;
    }
    case 8: {
        llmedge_eval_options *o;
        PICK(P_eo, o);
        static const uint32_t ctx[] = {0, 8, 15, 16, 32, UINT32_MAX, 1u << 30};
        switch (below(5)) {
        case 0: chk(llmedge_eval_options_set_n_ctx(o, ctx[below(7)]), !o); break;
        case 1: chk(llmedge_eval_options_set_max_chunks(o, chance(50) ? below(3) : (size_t)rnd()), !o); break;
        case 2: chk(llmedge_eval_options_set_threads(o, chance(70) ? below(3) : gen_u32()), !o); break;
        case 3: {
            llmedge_lora *l;
            PICK(P_lora, l);
            chk(llmedge_eval_options_add_lora(o, l, gen_float()), !o || !l);
            break;
        }
        default: {
            int i = (int)below(NP);
            llmedge_eval_options_free(P_eo[i]);
            P_eo[i] = NULL;
        }
        }
        return;
    }
    default: {
        llmedge_model *m;
        PICK(P_model, m);
        llmedge_eval_options *o;
        PICK(P_eo, o);
        /* NULL options = n_ctx 512: the text then is too short and fails fast. */
        str_t t = GEN_TEXT(D_PROMPT);
        if (t.p && t.n > 600) t.n = 600;
        double ppl = -1;
        llmedge_status st = chk(llmedge_model_perplexity(m, t.p, t.n, o, n1 ? NULL : &ppl), !m || !t.p || n1);
        if (st == LLMEDGE_STATUS_OK && !(ppl >= 1.0 && isfinite(ppl))) fail("perplexity %f", ppl);
        if (st && ppl != -1) fail("written on failure");
        return;
    }
    }
}

static void op_default_model_path(void) {
    /* The model is already fetched, so this only finds it. */
    char *s = SENT_PTR;
    size_t n = SENT_LEN;
    bool n1 = chance(10), n2 = chance(10);
    llmedge_status st = chk(llmedge_default_model_path(n1 ? NULL : &s, n2 ? NULL : &n), n1 || n2);
    put_json(st, s, n, false);
}

struct op {
    const char *name;
    int weight;
    op_fn fn;
};
static const struct op OPS[] = {
    {"info", 3, op_info},
    {"model_load", 1, op_model_load},
    {"model_free", 1, op_model_free},
    {"model_queries", 5, op_model_queries},
    {"tokenize", 6, op_tokenize},
    {"tokens_free", 2, op_tokens_free},
    {"detokenize", 5, op_detokenize},
    {"embed", 2, op_embed},
    {"string_free", 3, op_string_free},
    {"model_options", 6, op_model_options},
    {"session_options", 12, op_session_options},
    {"generate_options", 22, op_generate_options},
    {"chat_messages", 5, op_messages},
    {"session_new", 3, op_session_new},
    {"session_free", 1, op_session_free},
    {"session_cancel_idle", 1, op_session_cancel_idle},
    {"generate", 9, op_generate},
    {"completion", 10, op_completion},
    {"templates", 8, op_templates},
    {"library", 4, op_library},
    {"safety", 6, op_safety},
    {"lora", 5, op_lora},
    {"tools", 8, op_tools},
    {"default_model_path", 1, op_default_model_path},
    {"session_state", 3, op_session_state},
    {"engine_options", 5, op_engine_options},
    {"engine", 6, op_engine},
    {"request", 5, op_request},
};
#define N_OPS (sizeof OPS / sizeof OPS[0])

/* ---------------------------------------------------------------- set-up */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static const char *tmp_path(const char *name) {
    char *p = malloc(strlen(g_tmp) + strlen(name) + 2);
    CHECK(p != NULL);
    sprintf(p, "%s/%s", g_tmp, name);
    return p;
}

/* Every path is malloc'd and freed at the end. */
static const char *add_path(const char *p) {
    CHECK(g_n_paths < sizeof g_paths / sizeof g_paths[0]);
    g_paths[g_n_paths++] = p;
    return p;
}

static const char *join(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    CHECK(p != NULL);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void write_tmp(const char *name, const void *data, size_t n, bool listed) {
    const char *p = tmp_path(name);
    write_file(p, data, n);
    if (listed) add_path(p);
    else free((void *)p);
}

static void setup_files(const char *model_path, const char *lora_dir) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_tmp, sizeof g_tmp, "%s/llmedge_fuzz_XXXXXX", base);
    CHECK(mkdtemp(g_tmp) != NULL);
    add_path(join(model_path, "")); /* [0] the real model (a trailing '/' is cut below) */
    ((char *)g_paths[0])[strlen(model_path)] = 0;
    /* Outputs: written by the library, all inside the temporary folder. */
    g_out_paths[0] = add_path(tmp_path("audit"));
    g_out_paths[1] = add_path(tmp_path("out.gguf"));
    g_out_paths[2] = add_path(tmp_path("out2.gguf"));
    g_out_paths[3] = add_path(tmp_path("no/such/dir/x"));
    g_out_paths[4] = add_path(tmp_path(""));
    /* A truncated model, a bare header, an empty file, random bytes, a missing file. */
    FILE *in = fopen(model_path, "rb");
    CHECK(in != NULL);
    size_t n = 1 << 20;
    char *head = malloc(n);
    CHECK(head != NULL && fread(head, 1, n, in) == n);
    fclose(in);
    write_tmp("corrupt.gguf", head, n, true);
    write_tmp("header_only.gguf", head, 64, true);
    free(head);
    write_tmp("empty.gguf", "", 0, true);
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)below(256);
    memcpy(junk, "GGUF", 4);
    write_tmp("junk.gguf", junk, sizeof junk, true);
    add_path(tmp_path("missing.gguf"));
    /* Policies and template folders, good and bad. */
    const char *pol_ok = "enabled = true\n[pii]\nenabled = false\n";
    write_tmp("policy_ok.toml", pol_ok, strlen(pol_ok), true);
    write_tmp("policy_bad.toml", "bogus = [1,\n", 12, true);
    const char *tok = add_path(tmp_path("tpl_ok")), *tbad = add_path(tmp_path("tpl_bad"));
    CHECK(mkdir(tok, 0700) == 0 && mkdir(tbad, 0700) == 0);
    const char *tpl = "[[templates]]\nname = \"mine\"\ntemplate = \"Say {what}\"\n";
    write_tmp("tpl_ok/a.toml", tpl, strlen(tpl), false);
    write_tmp("tpl_bad/b.toml", "[[templates]]\nname = 1\n", 23, false);
    /* LoRA fixtures (read only): good adapters, bad ones, PEFT folders. */
    static const char *const lora_files[] = {"lora_smollm2_a.gguf", "lora_smollm2_b.gguf", "lora_bad_shape.gguf",
                                             "lora_gemma3_arch.gguf", "lora_truncated.gguf", "peft_smollm2_r8",
                                             "peft_dora"};
    for (size_t i = 0; i < sizeof lora_files / sizeof lora_files[0]; i++) add_path(join(lora_dir, lora_files[i]));
}

static void cleanup(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "test_fuzz_calls: could not remove %s\n", g_tmp);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL_PATH LORA_FIXTURES_DIR [ITERATIONS [SEED]]\n", argv[0]);
        return 2;
    }
    long iterations = 3000;
    g_seed = 20240611;
    const char *e;
    if ((e = getenv("LLMEDGE_FUZZ_ITERATIONS")) && *e) iterations = strtol(e, NULL, 10);
    if ((e = getenv("LLMEDGE_FUZZ_SEED")) && *e) g_seed = strtoull(e, NULL, 10);
    g_strict_null = (e = getenv("LLMEDGE_FUZZ_STRICT_NULL")) && *e == '1';
    if (argc > 3) iterations = strtol(argv[3], NULL, 10);
    if (argc > 4) g_seed = strtoull(argv[4], NULL, 10);
    g_rng = g_seed * 0x9E3779B97F4A7C15ULL + 1;
    if (g_rng == 0) g_rng = 1;
    printf("test_fuzz_calls: seed=%" PRIu64 " iterations=%ld\n", g_seed, iterations);
    fflush(stdout);

    setup_files(argv[1], argv[2]);
    if (chdir(g_tmp) != 0) fail("chdir"); /* relative names the library creates land here */

    llmedge_model_options *mo = llmedge_model_options_new();
    CHECK_OK(llmedge_model_options_set_threads(mo, 2));
    CHECK_OK(llmedge_model_load(argv[1], strlen(argv[1]), mo, &P_model[0]));
    llmedge_model_options_free(mo);
    CHECK_OK(llmedge_model_n_vocab(P_model[0], &g_n_vocab));
    CHECK_OK(llmedge_model_n_embd(P_model[0], &g_n_embd));
    CHECK_OK(llmedge_model_n_ctx_train(P_model[0], &g_n_ctx_train));

    int total_weight = 0;
    for (size_t i = 0; i < N_OPS; i++) total_weight += OPS[i].weight;
    long op_count[N_OPS];
    double op_secs[N_OPS];
    memset(op_count, 0, sizeof op_count);
    memset(op_secs, 0, sizeof op_secs);
    bool trace = getenv("LLMEDGE_FUZZ_TRACE") != NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (g_step = 0; g_step < iterations; g_step++) {
        int r = (int)below((uint32_t)total_weight);
        size_t k = 0;
        while (r >= OPS[k].weight) r -= OPS[k++].weight;
        g_op = OPS[k].name;
        op_count[k]++;
        if (trace) fprintf(stderr, "step %ld: %s\n", g_step, g_op);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        OPS[k].fn();
        clock_gettime(CLOCK_MONOTONIC, &b);
        op_secs[k] += (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        arena_reset();
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    g_op = "teardown";

    /* Free everything still owned, in an order unrelated to creation. */
    for (int i = NP - 1; i >= 0; i--) {
        llmedge_model_free(P_model[i]);
        llmedge_completion_free(P_comp[i]);
        llmedge_session_free(P_sess[i]);
        llmedge_model_options_free(P_mopt[i]);
        llmedge_session_options_free(P_sopt[i]);
        llmedge_generate_options_free(P_gopt[i]);
        llmedge_chat_messages_free(P_msgs[i]);
        llmedge_prompt_template_free(P_tpl[i]);
        llmedge_template_library_free(P_lib[i]);
        llmedge_safety_free(P_safety[i]);
        llmedge_lora_free(P_lora[i]);
        llmedge_merge_options_free(P_mergeo[i]);
        llmedge_quantize_options_free(P_qo[i]);
        llmedge_eval_options_free(P_eo[i]);
        llmedge_engine_options_free(P_engo[i]);
        if (P_tok_live[i]) llmedge_tokens_free(P_tok[i], P_toklen[i]);
    }
    /* Engines first (their requests end, each on_done frees its state), then the handles. */
    for (int i = 0; i < NE; i++) llmedge_engine_free(P_eng[i]);
    for (int i = 0; i < NP; i++) llmedge_request_free(P_req[i]);
    for (int i = 0; i < NS; i++) llmedge_string_free(P_str[i]);
    for (int i = 0; i < 2; i++) llmedge_floats_free(P_flt[i], P_fltlen[i]);
    for (size_t i = 0; i < g_n_paths; i++) free((void *)g_paths[i]);
    cleanup();

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("test_fuzz_calls: %ld steps, %ld checked calls in %.1f s; statuses:", iterations, g_calls, secs);
    for (int i = 0; i < 100; i++)
        if (g_status_count[i]) printf(" %s=%ld", llmedge_status_name(i), g_status_count[i]);
    printf("\n  calls with a NULL argument answered by an earlier argument's error: %ld", g_null_other);
    printf("\n  ops:");
    for (size_t i = 0; i < N_OPS; i++) printf(" %s=%ld(%.1fs)", OPS[i].name, op_count[i], op_secs[i]);
    printf("\ntest_fuzz_calls: all checks passed\n");
    return 0;
}
