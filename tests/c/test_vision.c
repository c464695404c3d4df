/* Vision through the C API on the tiny random VLM of `make fixtures`: the greedy tokens for an
 * image equal those of the mtmd reference loop (computed by run.sh with examples/vlm_reference),
 * images via add_image and OpenAI JSON content parts answer alike, the second question about
 * an image reuses its embedding, and every bad input gets its status.
 * Usage: test_vision VLM_FIXTURE_DIR EXPECTED_TOKENS_FILE */
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define TOKENS 16
#define PROMPT "<|im_start|>user\n<__media__>Describe the image.<|im_end|>\n<|im_start|>assistant\n"

static const char *g_dir;

static const char *fixture(char *buf, size_t cap, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", g_dir, name);
    CHECK(n > 0 && (size_t)n < cap);
    return buf;
}

static llmedge_model *load_model(const char *name) {
    char path[1024];
    fixture(path, sizeof path, name);
    llmedge_model_options *mo = llmedge_model_options_new();
    CHECK_OK(llmedge_model_options_set_threads(mo, 2));
    llmedge_model *m = NULL;
    CHECK_OK(llmedge_model_load(path, strlen(path), mo, &m));
    llmedge_model_options_free(mo);
    return m;
}

static llmedge_image *open_image(const char *name, const llmedge_image_options *o) {
    char path[1024];
    fixture(path, sizeof path, name);
    llmedge_image *img = NULL;
    CHECK_OK(llmedge_image_open(path, strlen(path), o, &img));
    return img;
}

static llmedge_status try_open(const char *name) {
    char path[1024];
    fixture(path, sizeof path, name);
    llmedge_image *img = NULL;
    llmedge_status st = llmedge_image_open(path, strlen(path), NULL, &img);
    CHECK(img == NULL || st == LLMEDGE_STATUS_OK);
    llmedge_image_free(img);
    return st;
}

static size_t tokens_of(const llmedge_completion *c, llmedge_token *out) {
    const llmedge_token *t = NULL;
    size_t n = 0;
    CHECK_OK(llmedge_completion_tokens(c, &t, &n));
    CHECK(n <= TOKENS);
    memcpy(out, t, n * sizeof *t);
    return n;
}

static bool same(const llmedge_token *a, size_t na, const llmedge_token *b, size_t nb) {
    return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

/* The projector's stats.encoded and stats.cache_hits, read from its JSON. */
static void stats(const llmedge_model *m, long *encoded, long *hits) {
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(llmedge_model_projector_json(m, &json, &len));
    const char *e = strstr(json, "\"encoded\":");
    const char *h = strstr(json, "\"cache_hits\":");
    CHECK(e != NULL && h != NULL);
    *encoded = strtol(e + strlen("\"encoded\":"), NULL, 10);
    *hits = strtol(h + strlen("\"cache_hits\":"), NULL, 10);
    llmedge_string_free(json);
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    g_dir = argv[1];
    llmedge_token expected[TOKENS];
    size_t n_expected = 0;
    FILE *f = fopen(argv[2], "r");
    CHECK(f != NULL);
    while (n_expected < TOKENS && fscanf(f, "%d", &expected[n_expected]) == 1) n_expected++;
    fclose(f);
    CHECK(n_expected > 0);

    char path[1024];
    llmedge_model *model = load_model("tiny-vlm.gguf");
    /* The 576-wide projector does not fit the 64-wide model; the right one does. */
    fixture(path, sizeof path, "mmproj-576.gguf");
    CHECK_STATUS(llmedge_model_load_mmproj(model, path, strlen(path)), LLMEDGE_STATUS_PROJECTOR);
    CHECK(strstr(llmedge_last_error(NULL), "n_embd") != NULL);
    char *json = NULL;
    size_t len = 0;
    CHECK_STATUS(llmedge_model_projector_json(model, &json, &len), LLMEDGE_STATUS_PROJECTOR);
    CHECK(json == NULL);
    fixture(path, sizeof path, "tiny-vlm-mmproj.gguf");
    CHECK_OK(llmedge_model_load_mmproj(model, path, strlen(path)));

    llmedge_session_options *so = llmedge_session_options_new();
    CHECK_OK(llmedge_session_options_set_n_ctx(so, 1024));
    CHECK_OK(llmedge_session_options_set_safety_enabled(so, false));
    llmedge_session *session = NULL;
    CHECK_OK(llmedge_session_new(model, so, &session));
    llmedge_generate_options *go = llmedge_generate_options_new();
    CHECK_OK(llmedge_generate_options_set_greedy(go, true));
    CHECK_OK(llmedge_generate_options_set_max_tokens(go, TOKENS));

    /* Raw prompt + image == the mtmd reference loop fed the same pixels. */
    llmedge_image *png = open_image("pattern.png", NULL);
    CHECK(llmedge_image_width(png) == 48 && llmedge_image_height(png) == 40);
    CHECK(strlen(llmedge_image_sha256(png)) == 64);
    const llmedge_image *imgs[1] = {png};
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_session_generate_with_images(session, PROMPT, strlen(PROMPT), imgs, 1, go, NULL, NULL, &c));
    llmedge_token raw[TOKENS];
    size_t n_raw = tokens_of(c, raw);
    CHECK(same(raw, n_raw, expected, n_expected));
    llmedge_completion_free(c);
    long encoded = 0, hits = 0;
    stats(model, &encoded, &hits);
    CHECK(encoded == 1 && hits == 0);

    /* Chat: the image added to the message, and the same as an OpenAI content part. */
    llmedge_chat_messages *m1 = llmedge_chat_messages_new();
    CHECK_STATUS(llmedge_chat_messages_add_image(m1, png), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(llmedge_chat_messages_add(m1, "user", 4, "Describe the image.", 19));
    CHECK_OK(llmedge_chat_messages_add_image(m1, png));
    llmedge_image_free(png); /* the message keeps its own reference */
    CHECK_OK(llmedge_session_chat(session, m1, go, NULL, NULL, &c));
    llmedge_token chat1[TOKENS];
    size_t n1 = tokens_of(c, chat1);
    llmedge_completion_free(c);
    char msg[2048];
    fixture(path, sizeof path, "pattern.png");
    int w = snprintf(msg, sizeof msg,
                     "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"file://%s\"}},"
                     "{\"type\":\"text\",\"text\":\"Describe the image.\"}]}",
                     path);
    CHECK(w > 0 && (size_t)w < sizeof msg);
    llmedge_chat_messages *m2 = llmedge_chat_messages_new();
    CHECK_OK(llmedge_chat_messages_add_json(m2, msg, strlen(msg), NULL));
    CHECK_OK(llmedge_session_chat(session, m2, go, NULL, NULL, &c));
    llmedge_token chat2[TOKENS];
    size_t n2 = tokens_of(c, chat2);
    llmedge_completion_free(c);
    CHECK(n1 > 0 && same(chat1, n1, chat2, n2));
    stats(model, &encoded, &hits);
    CHECK(encoded == 1 && hits == 2); /* one picture, encoded once for three questions */
    const char *remote = "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}";
    CHECK_STATUS(llmedge_chat_messages_add_json(m2, remote, strlen(remote), NULL), LLMEDGE_STATUS_INVALID_ARGUMENT);
    llmedge_chat_messages_free(m1);
    llmedge_chat_messages_free(m2);
    CHECK_OK(llmedge_model_clear_image_cache(model));

    /* DICOM: the caller's window changes the picture, so the answer. */
    llmedge_image_options *io = llmedge_image_options_new();
    CHECK_STATUS(llmedge_image_options_set_dicom_window(io, 40.0, 0.5), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_OK(llmedge_image_options_set_dicom_window(io, 40.0, 400.0));
    llmedge_image *ct_file = open_image("ct_mono2.dcm", NULL);
    llmedge_image *ct_own = open_image("ct_mono2.dcm", io);
    CHECK(strcmp(llmedge_image_sha256(ct_file), llmedge_image_sha256(ct_own)) != 0);
    CHECK_OK(llmedge_image_options_set_dicom_frame(io, 7));
    fixture(path, sizeof path, "multiframe.dcm");
    llmedge_image *bad = NULL;
    CHECK_STATUS(llmedge_image_open(path, strlen(path), io, &bad), LLMEDGE_STATUS_DICOM);
    CHECK(bad == NULL);
    imgs[0] = ct_file;
    CHECK_OK(llmedge_session_generate_with_images(session, PROMPT, strlen(PROMPT), imgs, 1, go, NULL, NULL, &c));
    llmedge_completion_free(c);

    /* Bad inputs. */
    CHECK(try_open("corrupt.png") == LLMEDGE_STATUS_IMAGE);
    CHECK(try_open("bomb.png") == LLMEDGE_STATUS_IMAGE);
    CHECK(try_open("jpeg2000.dcm") == LLMEDGE_STATUS_DICOM);
    CHECK(strstr(llmedge_last_error(NULL), "unsupported transfer syntax") != NULL);
    CHECK(try_open("no-such-file.png") == LLMEDGE_STATUS_IO);
    CHECK_OK(llmedge_image_options_set_limits(io, 100, 0, 0));
    fixture(path, sizeof path, "pattern.png");
    CHECK_STATUS(llmedge_image_open(path, strlen(path), io, &bad), LLMEDGE_STATUS_IMAGE);
    static const uint8_t rgb[6] = {0};
    CHECK_STATUS(llmedge_image_from_rgb(2, 2, rgb, sizeof rgb, &bad), LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(llmedge_image_from_bytes(rgb, sizeof rgb, NULL, &bad), LLMEDGE_STATUS_IMAGE);
    CHECK(bad == NULL);
    c = NULL;
    CHECK_STATUS(llmedge_session_generate_with_images(session, PROMPT, strlen(PROMPT), NULL, 0, go, NULL, NULL, &c),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    CHECK(strstr(llmedge_last_error(NULL), "image list is empty") != NULL);
    CHECK(c == NULL);

    /* A model without its projector refuses images. */
    llmedge_model *text_only = load_model("tiny-vlm.gguf");
    llmedge_session *s2 = NULL;
    CHECK_OK(llmedge_session_new(text_only, so, &s2));
    CHECK_STATUS(llmedge_session_generate_with_images(s2, PROMPT, strlen(PROMPT), imgs, 1, go, NULL, NULL, &c),
                 LLMEDGE_STATUS_PROJECTOR);
    CHECK(c == NULL);

    llmedge_session_free(s2);
    llmedge_model_free(text_only);
    llmedge_image_free(ct_file);
    llmedge_image_free(ct_own);
    llmedge_image_options_free(io);
    llmedge_generate_options_free(go);
    llmedge_session_free(session);
    llmedge_session_options_free(so);
    llmedge_model_free(model);
    printf("test_vision: all checks passed\n");
    return 0;
}
