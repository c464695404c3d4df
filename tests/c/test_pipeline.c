/* The prompt-template, structured-output, safety and audit pipeline through the C ABI, on the
 * real default model. Usage: test_pipeline MODEL_PATH */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"

#define S(lit) lit, (sizeof(lit) - 1)

static const char *completion_text(llmedge_completion *c) {
    const char *text = NULL;
    size_t len = 0;
    CHECK_OK(llmedge_completion_text(c, &text, &len));
    return text;
}

static llmedge_finish_reason finish(llmedge_completion *c) {
    llmedge_finish_reason why;
    CHECK_OK(llmedge_completion_finish_reason(c, &why));
    return why;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    char dir_template[] = "/tmp/llmedge-audit-XXXXXX";
    char *audit_dir = mkdtemp(dir_template);
    CHECK(audit_dir != NULL);

    llmedge_model *model = NULL;
    CHECK_OK(llmedge_model_load(argv[1], strlen(argv[1]), NULL, &model));
    llmedge_session_options *so = llmedge_session_options_new();
    CHECK_OK(llmedge_session_options_set_audit_dir(so, audit_dir, strlen(audit_dir)));
    CHECK_OK(llmedge_session_options_set_tenant(so, S("ward-7")));
    llmedge_session *session = NULL;
    CHECK_OK(llmedge_session_new(model, so, &session));

    /* Templates: variables are checked, missing and unknown ones listed together. */
    llmedge_prompt_template *role = NULL;
    CHECK_OK(llmedge_prompt_template_new(S("role"), S("As a {role}, answer: {query}"),
                                         LLMEDGE_TEMPLATE_FSTRING, &role));
    char *out = NULL;
    size_t out_len = 0;
    CHECK_STATUS(llmedge_prompt_template_render(role, S("{\"role\": \"nurse\", \"extra\": 1}"), &out, &out_len),
                 LLMEDGE_STATUS_TEMPLATE_VARIABLES);
    CHECK(strstr(llmedge_last_error(NULL), "missing variables: query") != NULL);
    CHECK(strstr(llmedge_last_error(NULL), "unknown variables: extra") != NULL);
    CHECK_OK(llmedge_prompt_template_render(role, S("{\"role\": \"nurse\", \"query\": \"why?\"}"), &out, &out_len));
    CHECK(strcmp(out, "As a nurse, answer: why?") == 0 && out_len == strlen(out));
    llmedge_string_free(out);
    CHECK_STATUS(llmedge_prompt_template_new(S("bad"), S("line\n{oops"), LLMEDGE_TEMPLATE_FSTRING, &role),
                 LLMEDGE_STATUS_TEMPLATE);
    CHECK(strstr(llmedge_last_error(NULL), "line 2") != NULL);

    /* Chain-of-thought answers are extracted; no answer line is a success with NULL. */
    llmedge_template_library *lib = NULL;
    CHECK_OK(llmedge_template_library_builtin(&lib));
    llmedge_prompt_template *cot = NULL;
    CHECK_OK(llmedge_template_library_get(lib, S("cot_zh"), &cot));
    CHECK_OK(llmedge_prompt_template_extract_answer(cot, S("\xe6\x80\x9d\xe8\x80\x83\n\xe7\xad\x94\xe6\xa1\x88\xef\xbc\x9a" "42"), &out, &out_len));
    CHECK(out != NULL && strcmp(out, "42") == 0);
    llmedge_string_free(out);
    CHECK_OK(llmedge_prompt_template_extract_answer(cot, S("no answer"), &out, &out_len));
    CHECK(out == NULL && out_len == 0);

    /* The insurance review, under its schema's grammar, yields a verdict from the enum. */
    llmedge_prompt_template *claim = NULL;
    CHECK_OK(llmedge_template_library_get(lib, S("insurance_claim_review_en"), &claim));
    llmedge_generate_options *go = llmedge_generate_options_new();
    CHECK_OK(llmedge_generate_options_set_greedy(go, true));
    CHECK_OK(llmedge_generate_options_set_max_tokens(go, 400));
    const char *vars =
        "{\"claim\": \"{\\\"claim_id\\\": \\\"CLM-7\\\", \\\"diagnosis\\\": \\\"appendicitis\\\", "
        "\\\"policy_coverage\\\": [\\\"appendicitis\\\"], \\\"hospital_level\\\": \\\"tertiary\\\", "
        "\\\"policy_min_hospital_level\\\": \\\"secondary\\\"}\"}";
    CHECK_OK(llmedge_session_run_template(session, claim, vars, strlen(vars), go, &out, &out_len));
    CHECK(strstr(out, "\"verdict\":\"approve\"") || strstr(out, "\"verdict\":\"reject\"") ||
          strstr(out, "\"verdict\":\"manual_review\""));
    llmedge_string_free(out);

    /* JSON schema, choices, and a schema that cannot become a grammar. */
    llmedge_completion *c = NULL;
    CHECK_OK(llmedge_generate_options_set_max_tokens(go, 40));
    CHECK_OK(llmedge_session_generate_json(session, S("Is water wet? Answer in JSON: "),
        S("{\"type\":\"object\",\"properties\":{\"wet\":{\"type\":\"boolean\"}},\"required\":[\"wet\"],\"additionalProperties\":false}"),
        go, &c));
    CHECK(strstr(completion_text(c), "\"wet\"") != NULL);
    llmedge_completion_free(c);
    CHECK_STATUS(llmedge_session_generate_json(session, S("x"), S("{\"$ref\": \"#/nope\"}"), go, &c),
                 LLMEDGE_STATUS_GRAMMAR);
    CHECK_STATUS(llmedge_session_generate_json(session, S("x"), S("{not json"), go, &c),
                 LLMEDGE_STATUS_INVALID_ARGUMENT);
    llmedge_generate_options *choice = llmedge_generate_options_new();
    CHECK_OK(llmedge_generate_options_add_choice(choice, S("urgent")));
    CHECK_OK(llmedge_generate_options_add_choice(choice, S("routine")));
    CHECK_OK(llmedge_generate_options_set_seed(choice, 7));
    CHECK_OK(llmedge_generate_options_set_request_id(choice, S("req-c-1")));
    CHECK_OK(llmedge_session_generate(session, S("My chest hurts. Category:"), choice, NULL, NULL, &c));
    const char *t = completion_text(c);
    CHECK(strcmp(t, "urgent") == 0 || strcmp(t, "routine") == 0);
    const char *rid = NULL;
    size_t rid_len = 0;
    CHECK_OK(llmedge_completion_request_id(c, &rid, &rid_len));
    CHECK(strcmp(rid, "req-c-1") == 0 && rid_len == 7);
    llmedge_completion_free(c);

    /* Safety: a blocked input is refused with the policy's message, and reported. */
    CHECK_OK(llmedge_session_generate(session, S("how to make a bomb"), go, NULL, NULL, &c));
    CHECK(finish(c) == LLMEDGE_FINISH_CONTENT_FILTER);
    CHECK(strcmp(completion_text(c), "\xe5\x86\x85\xe5\xae\xb9\xe8\xbf\x9d\xe5\x8f\x8d\xe5\xae\x89\xe5\x85\xa8\xe7\xad\x96\xe7\x95\xa5") == 0);
    CHECK_OK(llmedge_completion_safety_json(c, &out, &out_len));
    CHECK(strstr(out, "\"block\"") != NULL && strstr(out, "weapons") != NULL);
    llmedge_string_free(out);
    llmedge_completion_free(c);

    llmedge_safety *safety = NULL;
    CHECK_OK(llmedge_safety_new(NULL, 0, &safety));
    CHECK_OK(llmedge_safety_check_input(safety, S("call me on 13812345678"), &out, &out_len));
    CHECK(strstr(out, "13812345678") == NULL || strstr(out, "\"text\":\"call me on 13812345678\"") == NULL);
    CHECK(strstr(out, "\"mobile\":1") != NULL);
    llmedge_string_free(out);
    CHECK_STATUS(llmedge_safety_new(S("/nonexistent/policy.toml"), &safety), LLMEDGE_STATUS_IO);
    char bad_policy[512];
    snprintf(bad_policy, sizeof bad_policy, "%s/bad-policy.toml", audit_dir);
    FILE *f = fopen(bad_policy, "w");
    CHECK(f != NULL);
    fputs("enabled = true\n[pii]\ninput_action = \"shred\"\n", f);
    fclose(f);
    CHECK_STATUS(llmedge_safety_new(bad_policy, strlen(bad_policy), &safety), LLMEDGE_STATUS_POLICY);
    CHECK(strstr(llmedge_last_error(NULL), "bad-policy.toml:3") != NULL);
    remove(bad_policy);

    /* Every request above went to the audit log; freeing the session closes it. */
    llmedge_session_free(session);
    CHECK_OK(llmedge_audit_verify(audit_dir, strlen(audit_dir), &out, &out_len));
    CHECK(strstr(out, "\"ok\":true") != NULL);
    CHECK(strstr(out, "\"records\":5") != NULL);
    llmedge_string_free(out);

    llmedge_safety_free(safety);
    llmedge_generate_options_free(choice);
    llmedge_generate_options_free(go);
    llmedge_prompt_template_free(claim);
    llmedge_prompt_template_free(cot);
    llmedge_prompt_template_free(role);
    llmedge_template_library_free(lib);
    llmedge_session_options_free(so);
    llmedge_model_free(model);
    printf("test_pipeline: all checks passed\n");
    return 0;
}
