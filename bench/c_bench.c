/* Prompt (pp) and generation (tg) speed through the llmedge C API, measured exactly like
 * `llmedge bench` (the Rust API) so the two can be compared side by side.
 * Usage: c_bench MODEL THREADS PP TG REPS   -> one JSON line */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmedge.h"

#define OK(expr)                                                                                   \
    do {                                                                                           \
        llmedge_status s_ = (expr);                                                                \
        if (s_ != LLMEDGE_STATUS_OK) {                                                             \
            fprintf(stderr, "%s: %s\n", #expr, llmedge_last_error(NULL));                          \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static double timing(llmedge_completion *c, llmedge_timing which) {
    double v = 0;
    OK(llmedge_completion_timing(c, which, &v));
    return v;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL THREADS PP TG REPS\n", argv[0]);
        return 2;
    }
    uint32_t threads = (uint32_t)atoi(argv[2]), pp = (uint32_t)atoi(argv[3]), tg = (uint32_t)atoi(argv[4]);
    int reps = atoi(argv[5]);
    llmedge_model_options *mo = llmedge_model_options_new();
    OK(llmedge_model_options_set_threads(mo, threads));
    llmedge_model *model = NULL;
    OK(llmedge_model_load(argv[1], strlen(argv[1]), mo, &model));
    uint32_t n_vocab = 0;
    OK(llmedge_model_n_vocab(model, &n_vocab));
    llmedge_session_options *so = llmedge_session_options_new();
    OK(llmedge_session_options_set_n_ctx(so, pp + tg + 16));
    llmedge_session *session = NULL;
    OK(llmedge_session_new(model, so, &session));

    int32_t *bos = NULL;
    size_t n_bos = 0;
    OK(llmedge_model_tokenize(model, "", 0, true, false, &bos, &n_bos));
    int32_t *prompt = malloc(pp * sizeof(int32_t));
    uint64_t x = 42;
    size_t n = 0;
    for (; n < n_bos && n < pp; n++) prompt[n] = bos[n];
    while (n < pp) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        prompt[n++] = (int32_t)((x >> 33) % n_vocab);
    }
    int32_t tg_prompt = n_bos ? bos[0] : prompt[0];

    llmedge_generate_options *pp_opts = llmedge_generate_options_new();
    OK(llmedge_generate_options_set_greedy(pp_opts, true));
    OK(llmedge_generate_options_set_max_tokens(pp_opts, 1));
    llmedge_generate_options *tg_opts = llmedge_generate_options_new();
    OK(llmedge_generate_options_set_greedy(tg_opts, true));
    OK(llmedge_generate_options_set_max_tokens(tg_opts, tg + 1));
    OK(llmedge_generate_options_set_ignore_eos(tg_opts, true));

    double pp_sum = 0, tg_sum = 0;
    for (int rep = 0; rep <= reps; rep++) {
        llmedge_completion *c = NULL;
        OK(llmedge_session_generate_tokens(session, prompt, pp, pp_opts, NULL, NULL, &c));
        double pps = timing(c, LLMEDGE_TIMING_PROMPT_TOKENS_PER_SECOND);
        llmedge_completion_free(c);
        OK(llmedge_session_generate_tokens(session, &tg_prompt, 1, tg_opts, NULL, NULL, &c));
        double tgs = timing(c, LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND);
        llmedge_completion_free(c);
        if (rep > 0) {
            pp_sum += pps;
            tg_sum += tgs;
        }
    }
    printf("{\"pp\":{\"tokens\":%u,\"tokens_per_second\":%f},\"tg\":{\"tokens\":%u,\"tokens_per_second\":%f}}\n", pp,
           pp_sum / reps, tg, tg_sum / reps);
    free(prompt);
    llmedge_tokens_free(bos, n_bos);
    llmedge_generate_options_free(pp_opts);
    llmedge_generate_options_free(tg_opts);
    llmedge_session_free(session);
    llmedge_session_options_free(so);
    llmedge_model_free(model);
    llmedge_model_options_free(mo);
    return 0;
}
