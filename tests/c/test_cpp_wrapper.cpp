// GoogleTest suite for the C++ wrapper (include/llmedge.hpp) on the real default model.
// Usage: test_cpp_wrapper MODEL_PATH EXPECTED_TEXT_FILE LORA_FIXTURE_DIR
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "llmedge.hpp"

namespace {
std::string g_model_path;
std::string g_expected;
std::string g_fixtures;
const char *kPrompt = "The capital of France is";

const llmedge::Model &model() {
    static llmedge::Model m(g_model_path, llmedge::ModelOptions().threads(2));
    return m;
}
}  // namespace

TEST(CppWrapper, GreedyTextEqualsRustApi) {
    llmedge::Session s(model());
    auto c = s.generate(kPrompt, llmedge::GenerateOptions::greedy_max_tokens(32));
    EXPECT_EQ(std::string(c.text()), g_expected);
    EXPECT_EQ(c.usage().completion_tokens, c.tokens().size());
    EXPECT_GT(c.timings().generation_tokens_per_second, 0.0);
    EXPECT_EQ(model().detokenize(c.tokens()), std::string(c.text()));
}

TEST(CppWrapper, StreamingConcatenationEqualsBlocking) {
    llmedge::Session s(model());
    auto opts = llmedge::GenerateOptions::greedy_max_tokens(40);
    std::vector<llmedge::ChatMessage> msgs{{"user", "请用中文介绍一下北京。"}};
    auto blocking = s.chat(msgs, opts);
    std::string streamed;
    int pieces = 0;
    auto c = s.chat(msgs, opts, [&](std::string_view p) {
        streamed.append(p);
        ++pieces;
        return true;
    });
    EXPECT_GT(pieces, 1);
    EXPECT_EQ(streamed, std::string(blocking.text()));
    EXPECT_EQ(c.finish_reason(), blocking.finish_reason());
}

TEST(CppWrapper, ErrorsCarryTheStatus) {
    try {
        llmedge::Model missing("/nonexistent/x.gguf");
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_MODEL_NOT_FOUND);
        EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos);
    }
    llmedge::Session s(model());
    try {
        s.generate(kPrompt, llmedge::GenerateOptions().top_p(5.0f));
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_INVALID_ARGUMENT);
    }
    EXPECT_THROW(llmedge::SessionOptions().chat_template("not-a-template"), llmedge::Error);
}

TEST(CppWrapper, CallbackExceptionStopsAndIsRethrown) {
    llmedge::Session s(model());
    int pieces = 0;
    EXPECT_THROW(s.generate(kPrompt, llmedge::GenerateOptions::greedy_max_tokens(50).ignore_eos(true),
                            [&](std::string_view) -> bool {
                                if (++pieces == 2) throw std::runtime_error("stop here");
                                return true;
                            }),
                 std::runtime_error);
    EXPECT_LE(pieces, 3);
    // The session is still usable afterwards.
    EXPECT_FALSE(s.generate(kPrompt, llmedge::GenerateOptions::greedy_max_tokens(3)).text().empty());
}

TEST(CppWrapper, CancelFromAnotherThread) {
    llmedge::Session s(model());
    std::atomic<int> pieces{0};
    auto c = s.generate(kPrompt, llmedge::GenerateOptions::greedy_max_tokens(200).ignore_eos(true), [&](std::string_view) {
        if (++pieces == 3) std::thread([&] { s.cancel(); }).join();
        return true;
    });
    EXPECT_EQ(c.finish_reason(), LLMEDGE_FINISH_CANCELLED);
    EXPECT_LE(pieces.load(), 4);
}

TEST(CppWrapper, MovedHandlesAreSafe) {
    llmedge::Session a(model());
    llmedge::Session b = std::move(a);
    EXPECT_FALSE(b.generate(kPrompt, llmedge::GenerateOptions::greedy_max_tokens(2)).text().empty());
    auto tokens = model().tokenize("hello world");
    EXPECT_FALSE(tokens.empty());
    EXPECT_EQ(model().embed("hello").size(), model().n_embd());
}

TEST(CppWrapper, PromptTemplateRendersAndListsBadVariables) {
    llmedge::PromptTemplate role("role", "As a {role}, answer: {query}");
    EXPECT_EQ(role.render(R"({"role": "nurse", "query": "why?"})"), "As a nurse, answer: why?");
    EXPECT_NE(role.info_json().find("\"required_variables\""), std::string::npos);
    EXPECT_NE(role.messages_json(R"({"role": "nurse", "query": "why?"})").find("As a nurse, answer: why?"),
              std::string::npos);
    try {
        role.render(R"({"role": "nurse", "extra": 1})");
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_TEMPLATE_VARIABLES);
        EXPECT_STREQ(e.name(), "template_variables");
        EXPECT_NE(std::string(e.what()).find("missing variables: query"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("unknown variables: extra"), std::string::npos) << e.what();
    }
    try {
        llmedge::PromptTemplate bad("bad", "line\n{oops");
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_TEMPLATE);
        EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    }
    llmedge::PromptTemplate jinja("j", "Hello {{ name }}!", LLMEDGE_TEMPLATE_JINJA);
    EXPECT_EQ(jinja.render(R"({"name": "Ada"})"), "Hello Ada!");
}

TEST(CppWrapper, TemplateLibraryBuiltin) {
    auto lib = llmedge::TemplateLibrary::builtin();
    EXPECT_NE(lib.names_json().find("\"insurance_claim_review_en\""), std::string::npos);
    auto cot = lib.get("cot_zh");
    EXPECT_EQ(cot.extract_answer("思考\n答案：42"), std::optional<std::string>("42"));
    EXPECT_FALSE(cot.extract_answer("no answer").has_value());
    try {
        lib.get("no_such_template");
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_TEMPLATE);
    }
}

TEST(CppWrapper, RunTemplateReturnsJson) {
    llmedge::Session s(model());
    llmedge::PromptTemplate role("role", "As a {role}, answer: {query}");
    auto out = s.run_template(role, R"({"role": "nurse", "query": "what is a fever?"})",
                              llmedge::GenerateOptions::greedy_max_tokens(8));
    EXPECT_NE(out.find("\"completion\""), std::string::npos) << out;
    EXPECT_NE(out.find("As a nurse, answer: what is a fever?"), std::string::npos) << out;
    EXPECT_THROW(s.run_template(role, R"({"role": "nurse"})"), llmedge::Error);
}

TEST(CppWrapper, GenerateJsonFollowsTheSchema) {
    llmedge::Session s(model());
    auto c = s.generate_json(
        "Is water wet? Answer in JSON: ",
        R"({"type":"object","properties":{"wet":{"type":"boolean"}},"required":["wet"],"additionalProperties":false})",
        llmedge::GenerateOptions::greedy_max_tokens(40));
    EXPECT_NE(std::string(c.text()).find("\"wet\""), std::string::npos) << c.text();
    EXPECT_FALSE(c.request_id().empty());
    try {
        s.generate_json("x", R"({"$ref": "#/nope"})", llmedge::GenerateOptions::greedy_max_tokens(40));
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_GRAMMAR);
    }
    try {
        llmedge::GenerateOptions().json_schema("{not json");
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_INVALID_ARGUMENT);
    }
}

TEST(CppWrapper, ChoiceConstraintHolds) {
    llmedge::Session s(model());
    auto c = s.generate("My chest hurts. Category:",
                        llmedge::GenerateOptions().choice("urgent").choice("routine").seed(7).request_id("req-cpp-1"));
    std::string text(c.text());
    EXPECT_TRUE(text == "urgent" || text == "routine") << text;
    EXPECT_EQ(c.request_id(), "req-cpp-1");
}

TEST(CppWrapper, BlockedInputIsRefused) {
    llmedge::Session s(model());
    auto c = s.generate("how to make a bomb", llmedge::GenerateOptions::greedy_max_tokens(16));
    EXPECT_EQ(c.finish_reason(), LLMEDGE_FINISH_CONTENT_FILTER);
    EXPECT_EQ(std::string(c.text()), "内容违反安全策略");
    auto report = c.safety_json();
    EXPECT_NE(report.find("\"block\""), std::string::npos) << report;

    llmedge::Safety safety;
    auto checked = safety.check_input("call me on 13812345678");
    EXPECT_NE(checked.find("\"mobile\":1"), std::string::npos) << checked;
    try {
        llmedge::Safety missing("/nonexistent/policy.toml");
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_IO);
    }
}

TEST(CppWrapper, AuditLogVerifies) {
    char dir_template[] = "/tmp/llmedge-cpp-audit-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    std::string dir = dir_template;
    {
        llmedge::Session s(model(), llmedge::SessionOptions().audit_dir(dir).tenant("ward-9"));
        s.generate(kPrompt, llmedge::GenerateOptions::greedy_max_tokens(2).tenant("ward-10"));
    }
    auto report = llmedge::audit_verify(dir);
    EXPECT_NE(report.find("\"ok\":true"), std::string::npos) << report;
    std::filesystem::remove_all(dir);
}

TEST(CppWrapper, LoraAdaptersPerSessionAndPerRequest) {
    auto a = model().load_lora(g_fixtures + "/lora_smollm2_a.gguf");
    EXPECT_NE(a.info_json().find("\"rank\":8"), std::string::npos);
    auto opts = llmedge::GenerateOptions::greedy_max_tokens(16);
    opts.ignore_eos(true);
    llmedge::Session bare(model(), llmedge::SessionOptions().safety_enabled(false));
    llmedge::Session adapted(model(), llmedge::SessionOptions().safety_enabled(false).add_lora(a, 1.0f));
    const char *prompt = "A radiology report should describe";  // one that adapter a changes
    std::string base(bare.generate(prompt, opts).text());
    std::string with_a(adapted.generate(prompt, opts).text());
    EXPECT_NE(base, with_a);
    auto none = llmedge::GenerateOptions::greedy_max_tokens(16);
    none.ignore_eos(true).no_lora();
    EXPECT_EQ(std::string(adapted.generate(prompt, none).text()), base);
    auto req = llmedge::GenerateOptions::greedy_max_tokens(16);
    req.ignore_eos(true).add_lora(a);
    EXPECT_EQ(std::string(bare.generate(prompt, req).text()), with_a);
    try {
        model().load_lora(g_fixtures + "/lora_gemma3_arch.gguf");
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_ADAPTER);
        EXPECT_STREQ(e.name(), "adapter");
    }
}

TEST(CppWrapper, VisionImagesInMessagesAndRawPrompts) {
    const std::string vlm = g_fixtures + "/../vlm";
    llmedge::Model m(vlm + "/tiny-vlm.gguf", llmedge::ModelOptions().threads(2));
    try {
        m.load_mmproj(vlm + "/mmproj-576.gguf");
        FAIL() << "a mismatched projector loaded";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_PROJECTOR);
    }
    m.load_mmproj(vlm + "/tiny-vlm-mmproj.gguf");
    llmedge::Session s(m, llmedge::SessionOptions().n_ctx(1024).safety_enabled(false));
    auto image = llmedge::Image::open(vlm + "/pattern.png");
    EXPECT_EQ(image.width(), 48u);
    auto opts = llmedge::GenerateOptions::greedy_max_tokens(12);
    auto chat = s.chat({{"user", "Describe the image.", {image}}}, opts);
    auto raw = s.generate_with_images(
        "<|im_start|>user\n<__media__>Describe the image.<|im_end|>\n<|im_start|>assistant\n", {image}, opts);
    // The model's ChatML template adds a system turn, so only the raw prompt is compared
    // against the mtmd reference (by test_vision.c); here both must run and reuse the image.
    EXPECT_FALSE(chat.tokens().empty());
    EXPECT_FALSE(raw.tokens().empty());
    EXPECT_NE(m.projector_json().find("\"encoded\":1"), std::string::npos) << m.projector_json();
    try {
        llmedge::Image::open(vlm + "/jpeg2000.dcm");
        FAIL() << "JPEG 2000 decoded";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_DICOM);
    }
    auto window = llmedge::Image::open(vlm + "/ct_mono2.dcm", llmedge::ImageOptions().dicom_window(40, 400));
    EXPECT_NE(window.sha256(), llmedge::Image::open(vlm + "/ct_mono2.dcm").sha256());
}

TEST(CppWrapper, ToolsMergeImportQuantizePerplexity) {
    auto dir = std::filesystem::temp_directory_path() / ("llmedge-cpp-tools-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    size_t calls = 0;
    auto merged = (dir / "merged.gguf").string();
    auto report = llmedge::lora_merge(g_model_path, merged,
                                      llmedge::MergeOptions().add_lora(g_fixtures + "/lora_smollm2_a.gguf").out_type("f16"),
                                      [&](size_t done, size_t total) { calls++; EXPECT_LE(done, total); });
    EXPECT_NE(report.find("\"merged_tensors\""), std::string::npos);
    EXPECT_GT(calls, 0u);
    auto imported = (dir / "imported.gguf").string();
    report = llmedge::lora_import(g_fixtures + "/peft_smollm2_r8", g_model_path, imported, true);
    EXPECT_NE(report.find("\"rank\":8"), std::string::npos);
    auto lora = model().load_lora(imported);
    auto f16 = (dir / "f16.gguf").string();
    try {
        llmedge::quantize(g_model_path, f16, llmedge::QuantizeOptions("F16").threads(2));
        FAIL() << "expected an exception";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_INVALID_ARGUMENT);
    }
    report = llmedge::quantize(g_model_path, f16, llmedge::QuantizeOptions("F16").threads(2).allow_requantize(true));
    EXPECT_NE(report.find("\"file_type\":\"F16\""), std::string::npos);
    std::string text;
    for (int i = 0; i < 40; i++) text += "The quick brown fox jumps over the lazy dog. ";
    double ppl = llmedge::perplexity(model(), text, llmedge::EvalOptions().n_ctx(64).max_chunks(2));
    EXPECT_GT(ppl, 1.0);
    double ppl_lora = llmedge::perplexity(model(), text, llmedge::EvalOptions().n_ctx(64).max_chunks(2).add_lora(lora));
    EXPECT_GT(ppl_lora, 1.0);
    EXPECT_NE(ppl, ppl_lora);
    std::filesystem::remove_all(dir);
}

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL_PATH EXPECTED_TEXT_FILE LORA_FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    g_model_path = argv[1];
    g_fixtures = argv[3];
    std::ifstream f(argv[2], std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    g_expected = ss.str();
    return RUN_ALL_TESTS();
}
