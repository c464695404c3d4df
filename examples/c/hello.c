/* Stream an answer to a question with the llmedge C API.
 * Build: cmake -S examples/c -B build/hello -DCMAKE_PREFIX_PATH=<prefix> && cmake --build build/hello
 * Run:   build/hello/hello MODEL.gguf "Why is the sky blue?" */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "llmedge.h"

static bool print_piece(const char *piece, size_t len, void *user_data) {
    (void)user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return true; /* keep going */
}

static int fail(const char *what, llmedge_status status) {
    fprintf(stderr, "%s failed (%s): %s\n", what, llmedge_status_name(status), llmedge_last_error(NULL));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf QUESTION\n", argv[0]);
        return 2;
    }
    llmedge_model *model = NULL;
    llmedge_status st = llmedge_model_load(argv[1], strlen(argv[1]), NULL, &model);
    if (st != LLMEDGE_STATUS_OK) return fail("load", st);

    llmedge_session *session = NULL;
    st = llmedge_session_new(model, NULL, &session);
    if (st != LLMEDGE_STATUS_OK) return fail("session", st);

    llmedge_chat_messages *messages = llmedge_chat_messages_new();
    llmedge_chat_messages_add(messages, "user", 4, argv[2], strlen(argv[2]));
    llmedge_generate_options *options = llmedge_generate_options_new();
    llmedge_generate_options_set_max_tokens(options, 128);

    llmedge_completion *completion = NULL;
    st = llmedge_session_chat(session, messages, options, print_piece, NULL, &completion);
    if (st == LLMEDGE_STATUS_OK) {
        uint32_t prompt_tokens = 0, generated = 0;
        double tps = 0;
        llmedge_completion_usage(completion, &prompt_tokens, &generated);
        llmedge_completion_timing(completion, LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND, &tps);
        fprintf(stderr, "\n[%u prompt tokens, %u generated, %.1f tok/s]\n", prompt_tokens, generated, tps);
    }
    llmedge_completion_free(completion);
    llmedge_generate_options_free(options);
    llmedge_chat_messages_free(messages);
    llmedge_session_free(session);
    llmedge_model_free(model);
    return st == LLMEDGE_STATUS_OK ? 0 : fail("chat", st);
}
