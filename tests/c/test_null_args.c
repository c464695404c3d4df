/* Every exported function, called with NULL in each pointer argument (the others valid),
 * returns LLMEDGE_STATUS_NULL_ARG and writes nothing; every _free accepts NULL.
 * tests/c/run.sh checks that each function declared in llmedge.h is named in this file.
 * Usage: test_null_args MODEL_PATH LORA_ADAPTER_PATH */
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define NULL_ARG(expr) CHECK_STATUS(expr, LLMEDGE_STATUS_NULL_ARG)

int main(int argc, char **argv) {
    CHECK(argc == 3);
    const char *path = argv[1];
    size_t plen = strlen(path);
    const char *lora_path = argv[2];
    size_t llen = strlen(lora_path);

    /* Functions without pointer arguments, or documented as accepting NULL. */
    CHECK(llmedge_abi_version() == LLMEDGE_ABI_VERSION);
    CHECK(llmedge_version() != NULL);
    CHECK(llmedge_last_error(NULL) != NULL);
    CHECK(llmedge_status_name(LLMEDGE_STATUS_NULL_ARG) != NULL);

    /* _free(NULL) is a no-op for every handle and buffer type. */
    llmedge_model_options_free(NULL);
    llmedge_response_cache_free(NULL);
    llmedge_session_options_free(NULL);
    llmedge_generate_options_free(NULL);
    llmedge_chat_messages_free(NULL);
    llmedge_model_free(NULL);
    llmedge_session_free(NULL);
    llmedge_completion_free(NULL);
    llmedge_string_free(NULL);
    llmedge_tokens_free(NULL, 0);
    llmedge_floats_free(NULL, 0);
    llmedge_prompt_template_free(NULL);
    llmedge_template_library_free(NULL);
    llmedge_safety_free(NULL);
    llmedge_lora_free(NULL);
    llmedge_merge_options_free(NULL);
    llmedge_quantize_options_free(NULL);
    llmedge_eval_options_free(NULL);
    llmedge_engine_options_free(NULL);
    llmedge_engine_free(NULL);
    llmedge_request_free(NULL);

    /* Builders: NULL handle. */
    NULL_ARG(llmedge_model_options_set_n_gpu_layers(NULL, 1));
    NULL_ARG(llmedge_model_options_set_use_mmap(NULL, true));
    NULL_ARG(llmedge_model_options_set_use_mlock(NULL, true));
    NULL_ARG(llmedge_model_options_set_threads(NULL, 1));
    NULL_ARG(llmedge_model_options_set_compute_sha256(NULL, true));
    NULL_ARG(llmedge_model_options_set_max_prompt_tokens(NULL, 1));
    NULL_ARG(llmedge_model_options_set_max_sessions(NULL, 1));
    NULL_ARG(llmedge_model_options_set_manifest(NULL, "m", 1, NULL, 0));
    NULL_ARG(llmedge_session_options_set_n_ctx(NULL, 1));
    NULL_ARG(llmedge_session_options_set_n_batch(NULL, 1));
    NULL_ARG(llmedge_session_options_set_n_ubatch(NULL, 1));
    NULL_ARG(llmedge_session_options_set_threads(NULL, 1));
    NULL_ARG(llmedge_session_options_set_threads_batch(NULL, 1));
    NULL_ARG(llmedge_session_options_set_chat_template(NULL, "chatml", 6));
    NULL_ARG(llmedge_generate_options_set_max_tokens(NULL, 1));
    NULL_ARG(llmedge_generate_options_set_temperature(NULL, 1));
    NULL_ARG(llmedge_generate_options_set_top_k(NULL, 1));
    NULL_ARG(llmedge_generate_options_set_top_p(NULL, 1));
    NULL_ARG(llmedge_generate_options_set_min_p(NULL, 0));
    NULL_ARG(llmedge_generate_options_set_repeat_penalty(NULL, 1));
    NULL_ARG(llmedge_generate_options_set_frequency_penalty(NULL, 0));
    NULL_ARG(llmedge_generate_options_set_presence_penalty(NULL, 0));
    NULL_ARG(llmedge_generate_options_set_penalty_last_n(NULL, 1));
    NULL_ARG(llmedge_generate_options_set_seed(NULL, 1));
    NULL_ARG(llmedge_generate_options_set_greedy(NULL, true));
    NULL_ARG(llmedge_generate_options_set_ignore_eos(NULL, true));
    NULL_ARG(llmedge_generate_options_set_truncation(NULL, LLMEDGE_TRUNCATION_ERROR));
    NULL_ARG(llmedge_generate_options_add_logit_bias(NULL, 1, 1.0f));
    NULL_ARG(llmedge_generate_options_add_stop(NULL, "x", 1));
    NULL_ARG(llmedge_chat_messages_add(NULL, "user", 4, "x", 1));
    NULL_ARG(llmedge_session_options_set_safety_policy(NULL, "p", 1));
    NULL_ARG(llmedge_session_options_set_safety_enabled(NULL, false));
    NULL_ARG(llmedge_session_options_set_audit_dir(NULL, "d", 1));
    NULL_ARG(llmedge_session_options_set_tenant(NULL, "t", 1));
    NULL_ARG(llmedge_generate_options_set_json_schema(NULL, "{}", 2));
    NULL_ARG(llmedge_generate_options_add_choice(NULL, "a", 1));
    NULL_ARG(llmedge_generate_options_set_regex(NULL, "a", 1));
    NULL_ARG(llmedge_generate_options_set_grammar(NULL, "root ::= \"a\"", 12));
    NULL_ARG(llmedge_generate_options_set_request_id(NULL, "r", 1));
    NULL_ARG(llmedge_generate_options_set_tenant(NULL, "t", 1));
    NULL_ARG(llmedge_session_options_add_lora(NULL, NULL, 1.0f));
    NULL_ARG(llmedge_generate_options_add_lora(NULL, NULL, 1.0f));
    NULL_ARG(llmedge_generate_options_set_no_lora(NULL));
    NULL_ARG(llmedge_merge_options_add_lora(NULL, "a", 1, 1.0f));
    NULL_ARG(llmedge_merge_options_set_out_type(NULL, "f16", 3));
    NULL_ARG(llmedge_quantize_options_set_allow_requantize(NULL, true));
    NULL_ARG(llmedge_quantize_options_set_threads(NULL, 1));
    NULL_ARG(llmedge_quantize_options_set_pure(NULL, true));
    NULL_ARG(llmedge_quantize_options_add_keep(NULL, "a", 1, "f16", 3));
    NULL_ARG(llmedge_eval_options_set_n_ctx(NULL, 64));
    NULL_ARG(llmedge_eval_options_set_max_chunks(NULL, 1));
    NULL_ARG(llmedge_eval_options_set_threads(NULL, 1));
    NULL_ARG(llmedge_eval_options_add_lora(NULL, NULL, 1.0f));
    NULL_ARG(llmedge_session_options_set_prefix_reuse(NULL, false));
    NULL_ARG(llmedge_engine_options_set_session_options(NULL, NULL));
    NULL_ARG(llmedge_engine_options_set_slots(NULL, 1));
    NULL_ARG(llmedge_engine_options_set_max_queue(NULL, 1));
    NULL_ARG(llmedge_engine_options_set_response_cache(NULL, NULL, false));
    NULL_ARG(llmedge_engine_options_set_timeout_ms(NULL, 1));
    NULL_ARG(llmedge_engine_options_set_prefix_cache_bytes(NULL, 1));
    NULL_ARG(llmedge_engine_options_set_prefix_cache_min_tokens(NULL, 1));
    NULL_ARG(llmedge_engine_options_set_adapter_quantum(NULL, 1));

    /* Builders: NULL string arguments. */
    llmedge_session_options *so = llmedge_session_options_new();
    llmedge_generate_options *go = llmedge_generate_options_new();
    llmedge_chat_messages *msgs = llmedge_chat_messages_new();
    llmedge_model_options *mo = llmedge_model_options_new();
    CHECK(so && go && msgs && mo);
    NULL_ARG(llmedge_session_options_set_chat_template(so, NULL, 0));
    NULL_ARG(llmedge_generate_options_add_stop(go, NULL, 0));
    NULL_ARG(llmedge_session_options_set_safety_policy(so, NULL, 0));
    NULL_ARG(llmedge_session_options_set_audit_dir(so, NULL, 0));
    NULL_ARG(llmedge_session_options_set_tenant(so, NULL, 0));
    NULL_ARG(llmedge_model_options_set_manifest(mo, NULL, 0, NULL, 0));
    NULL_ARG(llmedge_generate_options_set_json_schema(go, NULL, 0));
    NULL_ARG(llmedge_generate_options_add_choice(go, NULL, 0));
    NULL_ARG(llmedge_generate_options_set_regex(go, NULL, 0));
    NULL_ARG(llmedge_generate_options_set_grammar(go, NULL, 0));
    NULL_ARG(llmedge_generate_options_set_request_id(go, NULL, 0));
    NULL_ARG(llmedge_generate_options_set_tenant(go, NULL, 0));
    NULL_ARG(llmedge_session_options_add_lora(so, NULL, 1.0f));
    NULL_ARG(llmedge_generate_options_add_lora(go, NULL, 1.0f));

    /* Tools: merge, import, quantize (NULL strings, builders, out-pointers). */
    llmedge_merge_options *mergeo = llmedge_merge_options_new();
    llmedge_quantize_options *qo = NULL;
    llmedge_eval_options *eo = llmedge_eval_options_new();
    CHECK(mergeo && eo);
    NULL_ARG(llmedge_merge_options_add_lora(mergeo, NULL, 0, 1.0f));
    NULL_ARG(llmedge_merge_options_set_out_type(mergeo, NULL, 0));
    NULL_ARG(llmedge_quantize_options_new(NULL, 0, &qo));
    NULL_ARG(llmedge_quantize_options_new("Q8_0", 4, NULL));
    CHECK(qo == NULL);
    CHECK_OK(llmedge_quantize_options_new("Q8_0", 4, &qo));
    NULL_ARG(llmedge_quantize_options_add_keep(qo, NULL, 0, "f16", 3));
    NULL_ARG(llmedge_quantize_options_add_keep(qo, "a", 1, NULL, 0));
    NULL_ARG(llmedge_eval_options_add_lora(eo, NULL, 1.0f));
    {
        char *rep = NULL;
        size_t rlen = 0;
        NULL_ARG(llmedge_lora_merge(NULL, 0, "o", 1, mergeo, NULL, NULL, &rep, &rlen));
        NULL_ARG(llmedge_lora_merge("b", 1, NULL, 0, mergeo, NULL, NULL, &rep, &rlen));
        NULL_ARG(llmedge_lora_merge("b", 1, "o", 1, NULL, NULL, NULL, &rep, &rlen));
        NULL_ARG(llmedge_lora_merge("b", 1, "o", 1, mergeo, NULL, NULL, NULL, &rlen));
        NULL_ARG(llmedge_lora_merge("b", 1, "o", 1, mergeo, NULL, NULL, &rep, NULL));
        NULL_ARG(llmedge_lora_import(NULL, 0, "b", 1, "o", 1, false, &rep, &rlen));
        NULL_ARG(llmedge_lora_import("p", 1, NULL, 0, "o", 1, false, &rep, &rlen));
        NULL_ARG(llmedge_lora_import("p", 1, "b", 1, NULL, 0, false, &rep, &rlen));
        NULL_ARG(llmedge_lora_import("p", 1, "b", 1, "o", 1, false, NULL, &rlen));
        NULL_ARG(llmedge_lora_import("p", 1, "b", 1, "o", 1, false, &rep, NULL));
        NULL_ARG(llmedge_quantize(NULL, 0, "o", 1, qo, NULL, NULL, &rep, &rlen));
        NULL_ARG(llmedge_quantize("i", 1, NULL, 0, qo, NULL, NULL, &rep, &rlen));
        NULL_ARG(llmedge_quantize("i", 1, "o", 1, NULL, NULL, NULL, &rep, &rlen));
        NULL_ARG(llmedge_quantize("i", 1, "o", 1, qo, NULL, NULL, NULL, &rlen));
        NULL_ARG(llmedge_quantize("i", 1, "o", 1, qo, NULL, NULL, &rep, NULL));
        CHECK(rep == NULL);
    }

    /* Prompt templates, the library, the safety layer, audit verification. */
    llmedge_prompt_template *tpl = NULL;
    llmedge_template_library *lib = NULL;
    llmedge_safety *safety = NULL;
    char *s = NULL;
    size_t slen = 0;
    NULL_ARG(llmedge_prompt_template_new(NULL, 0, "{a}", 3, LLMEDGE_TEMPLATE_FSTRING, &tpl));
    NULL_ARG(llmedge_prompt_template_new("t", 1, NULL, 0, LLMEDGE_TEMPLATE_FSTRING, &tpl));
    NULL_ARG(llmedge_prompt_template_new("t", 1, "{a}", 3, LLMEDGE_TEMPLATE_FSTRING, NULL));
    NULL_ARG(llmedge_prompt_template_from_toml(NULL, 0, &tpl));
    NULL_ARG(llmedge_prompt_template_from_toml("x", 1, NULL));
    NULL_ARG(llmedge_template_library_builtin(NULL));
    NULL_ARG(llmedge_template_library_load_dir(NULL, 0, &lib));
    NULL_ARG(llmedge_template_library_load_dir(".", 1, NULL));
    NULL_ARG(llmedge_safety_new("p", 1, NULL));
    NULL_ARG(llmedge_audit_verify(NULL, 0, &s, &slen));
    NULL_ARG(llmedge_audit_verify(".", 1, NULL, &slen));
    NULL_ARG(llmedge_audit_verify(".", 1, &s, NULL));
    NULL_ARG(llmedge_manifest_verify(NULL, 0, NULL, 0, &s, &slen));
    NULL_ARG(llmedge_manifest_verify("m", 1, NULL, 0, NULL, &slen));
    NULL_ARG(llmedge_manifest_verify("m", 1, NULL, 0, &s, NULL));
    CHECK(tpl == NULL && lib == NULL && safety == NULL && s == NULL);
    CHECK_OK(llmedge_prompt_template_new("t", 1, "{a}", 3, LLMEDGE_TEMPLATE_FSTRING, &tpl));
    CHECK_OK(llmedge_template_library_builtin(&lib));
    CHECK_OK(llmedge_safety_new(NULL, 0, &safety));
    NULL_ARG(llmedge_prompt_template_info_json(NULL, &s, &slen));
    NULL_ARG(llmedge_prompt_template_info_json(tpl, NULL, &slen));
    NULL_ARG(llmedge_prompt_template_info_json(tpl, &s, NULL));
    NULL_ARG(llmedge_prompt_template_render(NULL, NULL, 0, &s, &slen));
    NULL_ARG(llmedge_prompt_template_render(tpl, NULL, 0, NULL, &slen));
    NULL_ARG(llmedge_prompt_template_render(tpl, NULL, 0, &s, NULL));
    NULL_ARG(llmedge_prompt_template_messages_json(NULL, NULL, 0, &s, &slen));
    NULL_ARG(llmedge_prompt_template_messages_json(tpl, NULL, 0, NULL, &slen));
    NULL_ARG(llmedge_prompt_template_messages_json(tpl, NULL, 0, &s, NULL));
    NULL_ARG(llmedge_prompt_template_extract_answer(NULL, "x", 1, &s, &slen));
    NULL_ARG(llmedge_prompt_template_extract_answer(tpl, NULL, 0, &s, &slen));
    NULL_ARG(llmedge_prompt_template_extract_answer(tpl, "x", 1, NULL, &slen));
    NULL_ARG(llmedge_prompt_template_extract_answer(tpl, "x", 1, &s, NULL));
    NULL_ARG(llmedge_template_library_add_dir(NULL, ".", 1));
    NULL_ARG(llmedge_template_library_add_dir(lib, NULL, 0));
    NULL_ARG(llmedge_template_library_names_json(NULL, &s, &slen));
    NULL_ARG(llmedge_template_library_names_json(lib, NULL, &slen));
    NULL_ARG(llmedge_template_library_names_json(lib, &s, NULL));
    NULL_ARG(llmedge_template_library_get(NULL, "role_en", 7, &tpl));
    NULL_ARG(llmedge_template_library_get(lib, NULL, 0, &tpl));
    NULL_ARG(llmedge_template_library_get(lib, "role_en", 7, NULL));
    NULL_ARG(llmedge_safety_check_input(NULL, "x", 1, &s, &slen));
    NULL_ARG(llmedge_safety_check_input(safety, NULL, 0, &s, &slen));
    NULL_ARG(llmedge_safety_check_input(safety, "x", 1, NULL, &slen));
    NULL_ARG(llmedge_safety_check_input(safety, "x", 1, &s, NULL));
    NULL_ARG(llmedge_safety_check_output(NULL, "x", 1, &s, &slen));
    NULL_ARG(llmedge_safety_check_output(safety, NULL, 0, &s, &slen));
    NULL_ARG(llmedge_safety_check_output(safety, "x", 1, NULL, &slen));
    NULL_ARG(llmedge_safety_check_output(safety, "x", 1, &s, NULL));
    CHECK(s == NULL);
    NULL_ARG(llmedge_chat_messages_add(msgs, NULL, 0, "x", 1));
    NULL_ARG(llmedge_chat_messages_add(msgs, "user", 4, NULL, 0));
    CHECK_OK(llmedge_chat_messages_add(msgs, "user", 4, "hi", 2));
    CHECK_OK(llmedge_generate_options_set_max_tokens(go, 2));

    /* Model loading. */
    llmedge_model *model = NULL;
    NULL_ARG(llmedge_model_load(NULL, 0, mo, &model));
    NULL_ARG(llmedge_model_load(path, plen, mo, NULL));
    CHECK(model == NULL);
    CHECK_OK(llmedge_model_load(path, plen, mo, &model));

    char *str = NULL;
    size_t len = 0;
    uint32_t u32 = 0;
    llmedge_token *toks = NULL;
    float *vec = NULL;
    NULL_ARG(llmedge_model_info_json(NULL, &str, &len));
    NULL_ARG(llmedge_model_info_json(model, NULL, &len));
    NULL_ARG(llmedge_model_info_json(model, &str, NULL));
    NULL_ARG(llmedge_model_n_ctx_train(NULL, &u32));
    NULL_ARG(llmedge_model_n_ctx_train(model, NULL));
    NULL_ARG(llmedge_model_n_vocab(NULL, &u32));
    NULL_ARG(llmedge_model_n_vocab(model, NULL));
    NULL_ARG(llmedge_model_n_embd(NULL, &u32));
    NULL_ARG(llmedge_model_n_embd(model, NULL));
    NULL_ARG(llmedge_model_tokenize(NULL, "a", 1, true, true, &toks, &len));
    NULL_ARG(llmedge_model_tokenize(model, NULL, 0, true, true, &toks, &len));
    NULL_ARG(llmedge_model_tokenize(model, "a", 1, true, true, NULL, &len));
    NULL_ARG(llmedge_model_tokenize(model, "a", 1, true, true, &toks, NULL));
    int32_t one_token = 1;
    NULL_ARG(llmedge_model_detokenize(NULL, &one_token, 1, false, &str, &len));
    NULL_ARG(llmedge_model_detokenize(model, NULL, 0, false, &str, &len));
    NULL_ARG(llmedge_model_detokenize(model, &one_token, 1, false, NULL, &len));
    NULL_ARG(llmedge_model_detokenize(model, &one_token, 1, false, &str, NULL));
    NULL_ARG(llmedge_model_embed(NULL, "a", 1, &vec, &len));
    NULL_ARG(llmedge_model_embed(model, NULL, 0, &vec, &len));
    NULL_ARG(llmedge_model_embed(model, "a", 1, NULL, &len));
    NULL_ARG(llmedge_model_embed(model, "a", 1, &vec, NULL));
    NULL_ARG(llmedge_default_model_path(NULL, &len));
    NULL_ARG(llmedge_default_model_path(&str, NULL));
    CHECK(str == NULL && toks == NULL && vec == NULL);

    /* LoRA adapters and perplexity. */
    llmedge_lora *lora = NULL;
    double ppl = -1;
    NULL_ARG(llmedge_model_load_lora(NULL, lora_path, llen, &lora));
    NULL_ARG(llmedge_model_load_lora(model, NULL, 0, &lora));
    NULL_ARG(llmedge_model_load_lora(model, lora_path, llen, NULL));
    CHECK(lora == NULL);
    CHECK_OK(llmedge_model_load_lora(model, lora_path, llen, &lora));
    NULL_ARG(llmedge_lora_info_json(NULL, &str, &len));
    NULL_ARG(llmedge_lora_info_json(lora, NULL, &len));
    NULL_ARG(llmedge_lora_info_json(lora, &str, NULL));
    NULL_ARG(llmedge_session_options_add_lora(NULL, lora, 1.0f));
    NULL_ARG(llmedge_generate_options_add_lora(NULL, lora, 1.0f));
    NULL_ARG(llmedge_eval_options_add_lora(NULL, lora, 1.0f));
    NULL_ARG(llmedge_model_perplexity(NULL, "a", 1, eo, &ppl));
    NULL_ARG(llmedge_model_perplexity(model, NULL, 0, eo, &ppl));
    NULL_ARG(llmedge_model_perplexity(model, "a", 1, eo, NULL));
    CHECK(str == NULL && ppl == -1);

    /* Sessions. */
    llmedge_session *session = NULL;
    NULL_ARG(llmedge_session_new(NULL, so, &session));
    NULL_ARG(llmedge_session_new(model, so, NULL));
    CHECK(session == NULL);
    CHECK_OK(llmedge_session_new(model, so, &session));
    NULL_ARG(llmedge_session_cancel(NULL));

    llmedge_completion *c = NULL;
    NULL_ARG(llmedge_session_generate(NULL, "a", 1, go, NULL, NULL, &c));
    NULL_ARG(llmedge_session_generate(session, NULL, 0, go, NULL, NULL, &c));
    NULL_ARG(llmedge_session_generate(session, "a", 1, go, NULL, NULL, NULL));
    NULL_ARG(llmedge_session_generate_tokens(NULL, &one_token, 1, go, NULL, NULL, &c));
    NULL_ARG(llmedge_session_generate_tokens(session, NULL, 0, go, NULL, NULL, &c));
    NULL_ARG(llmedge_session_generate_tokens(session, &one_token, 1, go, NULL, NULL, NULL));
    NULL_ARG(llmedge_session_chat(NULL, msgs, go, NULL, NULL, &c));
    NULL_ARG(llmedge_session_chat(session, NULL, go, NULL, NULL, &c));
    NULL_ARG(llmedge_session_chat(session, msgs, go, NULL, NULL, NULL));
    NULL_ARG(llmedge_session_generate_json(NULL, "a", 1, "{}", 2, go, &c));
    NULL_ARG(llmedge_session_generate_json(session, NULL, 0, "{}", 2, go, &c));
    NULL_ARG(llmedge_session_generate_json(session, "a", 1, NULL, 0, go, &c));
    NULL_ARG(llmedge_session_generate_json(session, "a", 1, "{}", 2, go, NULL));
    NULL_ARG(llmedge_session_chat_json(NULL, msgs, "{}", 2, go, &c));
    NULL_ARG(llmedge_session_chat_json(session, NULL, "{}", 2, go, &c));
    NULL_ARG(llmedge_session_chat_json(session, msgs, NULL, 0, go, &c));
    NULL_ARG(llmedge_session_chat_json(session, msgs, "{}", 2, go, NULL));
    NULL_ARG(llmedge_session_run_template(NULL, tpl, NULL, 0, go, &s, &slen));
    NULL_ARG(llmedge_session_run_template(session, NULL, NULL, 0, go, &s, &slen));
    NULL_ARG(llmedge_session_run_template(session, tpl, NULL, 0, go, NULL, &slen));
    NULL_ARG(llmedge_session_run_template(session, tpl, NULL, 0, go, &s, NULL));
    NULL_ARG(llmedge_session_run_dynamic(NULL, tpl, "r", 1, go, &s, &slen));
    NULL_ARG(llmedge_session_run_dynamic(session, NULL, "r", 1, go, &s, &slen));
    NULL_ARG(llmedge_session_run_dynamic(session, tpl, NULL, 0, go, &s, &slen));
    NULL_ARG(llmedge_session_run_dynamic(session, tpl, "r", 1, go, NULL, &slen));
    NULL_ARG(llmedge_session_run_dynamic(session, tpl, "r", 1, go, &s, NULL));
    CHECK(c == NULL && s == NULL);
    /* NULL options, callback and user_data mean defaults / no streaming. */
    CHECK_OK(llmedge_session_generate(session, "a", 1, go, NULL, NULL, &c));

    const char *text = NULL;
    const int32_t *ctoks = NULL;
    llmedge_finish_reason why;
    uint32_t p = 0, g = 0;
    double t = 0;
    NULL_ARG(llmedge_completion_text(NULL, &text, &len));
    NULL_ARG(llmedge_completion_text(c, NULL, &len));
    NULL_ARG(llmedge_completion_text(c, &text, NULL));
    NULL_ARG(llmedge_completion_tokens(NULL, &ctoks, &len));
    NULL_ARG(llmedge_completion_tokens(c, NULL, &len));
    NULL_ARG(llmedge_completion_tokens(c, &ctoks, NULL));
    NULL_ARG(llmedge_completion_finish_reason(NULL, &why));
    NULL_ARG(llmedge_completion_finish_reason(c, NULL));
    NULL_ARG(llmedge_completion_usage(NULL, &p, &g));
    NULL_ARG(llmedge_completion_usage(c, NULL, &g));
    NULL_ARG(llmedge_completion_usage(c, &p, NULL));
    NULL_ARG(llmedge_completion_timing(NULL, LLMEDGE_TIMING_PROMPT_MS, &t));
    NULL_ARG(llmedge_completion_timing(c, LLMEDGE_TIMING_PROMPT_MS, NULL));
    NULL_ARG(llmedge_completion_request_id(NULL, &text, &len));
    NULL_ARG(llmedge_completion_request_id(c, NULL, &len));
    NULL_ARG(llmedge_completion_request_id(c, &text, NULL));
    NULL_ARG(llmedge_completion_safety_json(NULL, &s, &slen));
    NULL_ARG(llmedge_completion_safety_json(c, NULL, &slen));
    NULL_ARG(llmedge_completion_safety_json(c, &s, NULL));
    CHECK(text == NULL && ctoks == NULL);
    size_t mlen = 0;
    CHECK(strstr(llmedge_last_error(&mlen), "null argument") != NULL && mlen > 0);

    /* Vision: projector, image options, images, requests with images. */
    llmedge_image_options_free(NULL);
    llmedge_image_free(NULL);
    CHECK(llmedge_image_width(NULL) == 0 && llmedge_image_height(NULL) == 0);
    CHECK(llmedge_image_sha256(NULL) == NULL);
    NULL_ARG(llmedge_model_load_mmproj(NULL, "m", 1));
    NULL_ARG(llmedge_model_load_mmproj(model, NULL, 0));
    NULL_ARG(llmedge_model_projector_json(NULL, &s, &slen));
    NULL_ARG(llmedge_model_projector_json(model, NULL, &slen));
    NULL_ARG(llmedge_model_projector_json(model, &s, NULL));
    NULL_ARG(llmedge_model_clear_image_cache(NULL));
    {
        llmedge_image_options *io = llmedge_image_options_new();
        CHECK(io != NULL);
        NULL_ARG(llmedge_image_options_set_limits(NULL, 1, 1, 1));
        NULL_ARG(llmedge_image_options_set_dicom_window(NULL, 40.0, 400.0));
        NULL_ARG(llmedge_image_options_set_dicom_frame(NULL, 0));
        static const uint8_t rgb[3] = {1, 2, 3};
        llmedge_image *img = NULL;
        NULL_ARG(llmedge_image_open(NULL, 0, io, &img));
        NULL_ARG(llmedge_image_open("x.png", 5, io, NULL));
        NULL_ARG(llmedge_image_from_bytes(NULL, 0, io, &img));
        NULL_ARG(llmedge_image_from_bytes(rgb, 3, io, NULL));
        NULL_ARG(llmedge_image_from_rgb(1, 1, NULL, 3, &img));
        NULL_ARG(llmedge_image_from_rgb(1, 1, rgb, 3, NULL));
        CHECK(img == NULL);
        CHECK_OK(llmedge_image_from_rgb(1, 1, rgb, 3, &img));
        NULL_ARG(llmedge_chat_messages_add_image(NULL, img));
        NULL_ARG(llmedge_chat_messages_add_image(msgs, NULL));
        NULL_ARG(llmedge_chat_messages_add_json(NULL, "{}", 2, io));
        NULL_ARG(llmedge_chat_messages_add_json(msgs, NULL, 0, io));
        const llmedge_image *imgs[1] = {img};
        llmedge_completion *vc = NULL;
        NULL_ARG(llmedge_session_generate_with_images(NULL, "a", 1, imgs, 1, go, NULL, NULL, &vc));
        NULL_ARG(llmedge_session_generate_with_images(session, NULL, 0, imgs, 1, go, NULL, NULL, &vc));
        NULL_ARG(llmedge_session_generate_with_images(session, "a", 1, NULL, 1, go, NULL, NULL, &vc));
        NULL_ARG(llmedge_session_generate_with_images(session, "a", 1, imgs, 1, go, NULL, NULL, NULL));
        const llmedge_image *null_imgs[1] = {NULL};
        NULL_ARG(llmedge_session_generate_with_images(session, "a", 1, null_imgs, 1, go, NULL, NULL, &vc));
        CHECK(vc == NULL);
        llmedge_image_free(img);
        llmedge_image_options_free(io);
    }
    /* Session state files and cached prompt tokens. */
    size_t n_state = 7;
    NULL_ARG(llmedge_session_save_state(NULL, "s", 1));
    NULL_ARG(llmedge_session_save_state(session, NULL, 0));
    NULL_ARG(llmedge_session_load_state(NULL, "s", 1, &n_state));
    NULL_ARG(llmedge_session_load_state(session, NULL, 0, &n_state));
    NULL_ARG(llmedge_session_load_state(session, "s", 1, NULL));
    NULL_ARG(llmedge_completion_cached_prompt_tokens(NULL, &u32));
    NULL_ARG(llmedge_completion_cached_prompt_tokens(c, NULL));
    CHECK(n_state == 7);

    /* The serving engine and its requests. */
    llmedge_engine_options *engo = llmedge_engine_options_new();
    CHECK(engo != NULL);
    NULL_ARG(llmedge_engine_options_set_session_options(engo, NULL));
    CHECK_OK(llmedge_engine_options_set_session_options(engo, so));
    CHECK_OK(llmedge_engine_options_set_slots(engo, 1));
    llmedge_response_cache *rc = NULL;
    NULL_ARG(llmedge_response_cache_new_memory(4, 1000, NULL));
    NULL_ARG(llmedge_response_cache_new_redis(NULL, 0, NULL, 0, 1000, 100, &rc));
    NULL_ARG(llmedge_response_cache_new_redis("redis://127.0.0.1:1/", 20, NULL, 0, 1000, 100, NULL));
    CHECK(rc == NULL);
    CHECK_OK(llmedge_response_cache_new_memory(4, 1000, &rc));
    NULL_ARG(llmedge_response_cache_stats_json(NULL, &s, &slen));
    NULL_ARG(llmedge_response_cache_stats_json(rc, NULL, &slen));
    NULL_ARG(llmedge_response_cache_stats_json(rc, &s, NULL));
    CHECK_OK(llmedge_engine_options_set_response_cache(engo, rc, false));
    CHECK_OK(llmedge_engine_options_set_response_cache(engo, NULL, false)); /* off again */
    llmedge_response_cache_free(rc);
    llmedge_engine *engine = NULL;
    NULL_ARG(llmedge_engine_new(NULL, engo, &engine));
    NULL_ARG(llmedge_engine_new(model, engo, NULL));
    CHECK(engine == NULL);
    CHECK_OK(llmedge_engine_new(model, engo, &engine));
    NULL_ARG(llmedge_engine_shutdown(NULL, true));
    NULL_ARG(llmedge_engine_stats_json(NULL, &s, &slen));
    NULL_ARG(llmedge_engine_stats_json(engine, NULL, &slen));
    NULL_ARG(llmedge_engine_stats_json(engine, &s, NULL));
    llmedge_request *req = NULL;
    NULL_ARG(llmedge_engine_submit(NULL, "a", 1, go, 0, NULL, NULL, NULL, &req));
    NULL_ARG(llmedge_engine_submit(engine, NULL, 0, go, 0, NULL, NULL, NULL, &req));
    NULL_ARG(llmedge_engine_submit_tokens(NULL, &one_token, 1, go, 0, NULL, NULL, NULL, &req));
    NULL_ARG(llmedge_engine_submit_tokens(engine, NULL, 0, go, 0, NULL, NULL, NULL, &req));
    NULL_ARG(llmedge_engine_submit_chat(NULL, msgs, go, 0, NULL, NULL, NULL, &req));
    NULL_ARG(llmedge_engine_submit_chat(engine, NULL, go, 0, NULL, NULL, NULL, &req));
    CHECK(req == NULL && s == NULL);
    /* NULL options, callbacks and out_request are allowed. */
    CHECK_OK(llmedge_engine_submit(engine, "a", 1, go, 0, NULL, NULL, NULL, NULL));
    CHECK_OK(llmedge_engine_submit_chat(engine, msgs, go, 0, NULL, NULL, NULL, &req));
    bool done = false;
    llmedge_completion *ec = NULL;
    NULL_ARG(llmedge_request_cancel(NULL));
    NULL_ARG(llmedge_request_id(NULL, &text, &len));
    NULL_ARG(llmedge_request_id(req, NULL, &len));
    NULL_ARG(llmedge_request_id(req, &text, NULL));
    NULL_ARG(llmedge_request_done(NULL, &done));
    NULL_ARG(llmedge_request_done(req, NULL));
    NULL_ARG(llmedge_request_wait(NULL, &ec));
    NULL_ARG(llmedge_request_wait(req, NULL));
    CHECK(text == NULL && ec == NULL);
    CHECK_OK(llmedge_request_wait(req, &ec));
    llmedge_completion_free(ec);
    llmedge_request_free(req);
    llmedge_engine_free(engine);
    llmedge_engine_options_free(engo);

    llmedge_completion_free(c);
    llmedge_prompt_template_free(tpl);
    llmedge_template_library_free(lib);
    llmedge_safety_free(safety);
    llmedge_session_free(session);
    llmedge_model_free(model);
    llmedge_model_options_free(mo);
    llmedge_session_options_free(so);
    llmedge_generate_options_free(go);
    llmedge_chat_messages_free(msgs);
    llmedge_lora_free(lora);
    llmedge_merge_options_free(mergeo);
    llmedge_quantize_options_free(qo);
    llmedge_eval_options_free(eo);
    printf("test_null_args: all checks passed\n");
    return 0;
}
