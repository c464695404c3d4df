// GoogleTest suite for the C++ wrapper (include/llmedge.hpp) on the real default model.
// Usage: test_cpp_wrapper MODEL_PATH EXPECTED_TEXT_FILE LORA_FIXTURE_DIR
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <mutex>
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

namespace {
llmedge::EngineOptions engine_options(uint32_t slots, uint32_t max_queue = 64) {
    llmedge::EngineOptions o;
    o.session_options(llmedge::SessionOptions().n_ctx(512)).slots(slots).max_queue(max_queue);
    return o;
}

std::vector<int32_t> alone(const std::vector<llmedge::ChatMessage> &msgs, const llmedge::GenerateOptions &o) {
    llmedge::Session s(model(), llmedge::SessionOptions().n_ctx(512));
    return s.chat(msgs, o).tokens();
}

/// Pieces and the end of one request, filled on the scheduler thread.
struct Seen {
    std::mutex mu;
    std::condition_variable cv;
    std::string text;
    int pieces = 0;
    int done = 0;
    bool ok = false;
    std::string done_text;
    llmedge_status error = LLMEDGE_STATUS_OK;

    llmedge::PieceCallback piece() {
        return [this](std::string_view p) {
            std::lock_guard<std::mutex> lock(mu);
            text.append(p);
            ++pieces;
            cv.notify_all();
            return true;
        };
    }
    llmedge::DoneCallback finished() {
        return [this](const llmedge::CompletionView *c, const llmedge::Error *e) {
            std::lock_guard<std::mutex> lock(mu);
            ++done;
            ok = c != nullptr;
            if (c) done_text = std::string(c->text());
            if (e) error = e->status();
            cv.notify_all();
        };
    }
    void wait_for_piece() {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return pieces > 0 || done > 0; });
    }
};
}  // namespace

TEST(CppWrapper, EngineBatchesRequestsThatEqualEachRunAlone) {
    const char *questions[] = {"What is the capital of France?", "Name three colours of the rainbow.",
                               "Write one sentence about the sea.", "What is 12 times 12?",
                               "Give a synonym for happy."};
    auto opts = llmedge::GenerateOptions::greedy_max_tokens(20);
    llmedge::Engine engine(model(), engine_options(3));
    std::vector<Seen> seen(5);
    std::vector<llmedge::Request> requests;
    for (size_t i = 0; i < 5; i++) {
        requests.push_back(engine.submit_chat({{"user", questions[i]}}, opts, seen[i].piece(), seen[i].finished()));
    }
    for (size_t i = 0; i < 5; i++) {
        auto c = requests[i].wait();
        EXPECT_TRUE(requests[i].done());
        EXPECT_EQ(c.tokens(), alone({{"user", questions[i]}}, opts)) << questions[i];
        EXPECT_EQ(seen[i].text, std::string(c.text()));
        EXPECT_EQ(seen[i].done, 1);
        EXPECT_TRUE(seen[i].ok);
        EXPECT_EQ(seen[i].done_text, std::string(c.text()));
        EXPECT_EQ(requests[i].id(), c.request_id());
    }
    auto stats = engine.stats_json();
    EXPECT_NE(stats.find("\"finished\":5"), std::string::npos) << stats;
    EXPECT_NE(stats.find("\"slots\":3"), std::string::npos) << stats;
    // generate() and chat() are submit + wait.
    EXPECT_EQ(engine.chat({{"user", questions[0]}}, opts).tokens(), alone({{"user", questions[0]}}, opts));
    EXPECT_FALSE(engine.generate(kPrompt, opts).text().empty());
}

TEST(CppWrapper, EngineResponseCacheAndModelLimits) {
    auto cache = llmedge::ResponseCache::memory(8, std::chrono::minutes(1));
    auto opts = llmedge::GenerateOptions::greedy_max_tokens(12);
    llmedge::Engine engine(model(), engine_options(1).response_cache(cache));
    auto first = engine.generate(kPrompt, opts);
    auto hit = engine.generate(kPrompt, opts);
    EXPECT_EQ(hit.tokens(), first.tokens());
    EXPECT_NE(engine.stats_json().find("\"response_cache_hits\":1"), std::string::npos) << engine.stats_json();
    EXPECT_NE(cache.stats_json().find("\"hits\":1"), std::string::npos) << cache.stats_json();

    llmedge::Model limited(g_model_path, llmedge::ModelOptions().threads(2).max_prompt_tokens(8).max_sessions(1));
    llmedge::Session s(limited, llmedge::SessionOptions().n_ctx(128));
    try {
        s.generate("one two three four five six seven eight nine ten", opts);
        FAIL() << "expected LLMEDGE_STATUS_LIMIT";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_LIMIT);
        EXPECT_STREQ(e.name(), "limit");
    }
    try {
        llmedge::Session second(limited, llmedge::SessionOptions().n_ctx(128));
        FAIL() << "expected LLMEDGE_STATUS_BUSY";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_BUSY);
    }
}

TEST(CppWrapper, RouterRulesAndClassifier) {
    auto router = llmedge::Router::from_toml(
        "[[routes]]\nname = \"finance\"\nmodel = \"base\"\nkeywords = [\"invoice\"]\n"
        "[[routes]]\nname = \"medical\"\nmodel = \"base\"\n"
        "[router.classifier]\nmodel = \"base\"\n");
    EXPECT_EQ(router.route("an invoice"),
              R"({"route":"finance","model":"base","adapters":[],"rule":"keyword","matched":"invoice"})");
    EXPECT_EQ(router.route("hi", "", std::string_view("medical")),
              R"({"route":"medical","model":"base","adapters":[],"rule":"model","matched":"medical"})");
    try {
        router.route("What dose is safe for a child?");
        FAIL() << "expected LLMEDGE_STATUS_INVALID_ARGUMENT";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_INVALID_ARGUMENT);
    }
    llmedge::RouteClassifier classifier(model());
    auto d = router.route("What dose is safe for a child?", "", std::nullopt, &classifier);
    EXPECT_NE(d.find("\"rule\":\"classifier\""), std::string::npos) << d;
    try {
        llmedge::Router::from_toml("[[routes]]\nname = \"a\"\n");
        FAIL() << "expected LLMEDGE_STATUS_CONFIG";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_CONFIG);
    }
}

TEST(CppWrapper, EngineBusyCancelTimeoutAndShutdown) {
    llmedge::Engine engine(model(), engine_options(1, 1));
    auto longo = llmedge::GenerateOptions::greedy_max_tokens(300);
    longo.ignore_eos(true);
    Seen running_seen, late_seen;
    auto running = engine.submit("Once upon a time", longo, running_seen.piece());
    running_seen.wait_for_piece();
    auto queued = engine.submit("Hello", longo);
    try {
        engine.submit("Hi", longo);
        FAIL() << "expected LLMEDGE_STATUS_BUSY";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_BUSY);
        EXPECT_STREQ(e.name(), "busy");
    }
    queued.cancel();
    auto cq = queued.wait();
    EXPECT_EQ(cq.finish_reason(), LLMEDGE_FINISH_CANCELLED);
    EXPECT_EQ(cq.usage().completion_tokens, 0u);
    std::thread([&] { running.cancel(); }).join();
    auto cr = running.wait();
    EXPECT_EQ(cr.finish_reason(), LLMEDGE_FINISH_CANCELLED);
    EXPECT_LT(cr.usage().completion_tokens, 300u);
    // A deadline: on_done gets the error, wait() throws it.
    auto late = engine.submit("Once upon a time", longo, nullptr, late_seen.finished(), std::chrono::milliseconds(200));
    try {
        late.wait();
        FAIL() << "expected LLMEDGE_STATUS_TIMEOUT";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_TIMEOUT);
    }
    EXPECT_EQ(late_seen.done, 1);
    EXPECT_EQ(late_seen.error, LLMEDGE_STATUS_TIMEOUT);
    // An exception thrown by a callback stops the request and is rethrown by wait().
    int pieces = 0;
    auto thrower = engine.submit("Once upon a time", longo, [&](std::string_view) -> bool {
        if (++pieces == 2) throw std::runtime_error("stop here");
        return true;
    });
    EXPECT_THROW(thrower.wait(), std::runtime_error);
    EXPECT_EQ(pieces, 2);
    engine.shutdown(true);
    try {
        engine.submit("Hi");
        FAIL() << "expected LLMEDGE_STATUS_CLOSED";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_CLOSED);
    }
}

TEST(CppWrapper, SessionStateRoundTripAndCorruptFiles) {
    auto dir = std::filesystem::temp_directory_path() / ("llmedge-cpp-state-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto path = (dir / "conversation.kv").string();
    auto opts = llmedge::GenerateOptions::greedy_max_tokens(12);
    std::vector<llmedge::ChatMessage> history{{"user", "What is the capital of France?"}};
    llmedge::Session s(model(), llmedge::SessionOptions().n_ctx(512));
    auto first = s.chat(history, opts);
    EXPECT_EQ(first.usage().cached_prompt_tokens, 0u);
    history.push_back({"assistant", std::string(first.text())});
    history.push_back({"user", "And of Italy?"});
    auto second = s.chat(history, opts);
    EXPECT_GE(second.usage().cached_prompt_tokens, first.usage().prompt_tokens);
    s.save_state(path);
    history.push_back({"assistant", std::string(second.text())});
    history.push_back({"user", "And of Spain?"});
    auto continued = s.chat(history, opts);
    llmedge::Session restored(model(), llmedge::SessionOptions().n_ctx(512));
    size_t n = restored.load_state(path);
    EXPECT_GE(n, second.usage().prompt_tokens);
    auto third = restored.chat(history, opts);
    EXPECT_EQ(third.tokens(), continued.tokens());
    EXPECT_EQ(third.usage().cached_prompt_tokens, continued.usage().cached_prompt_tokens);
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        auto mid = static_cast<std::streamoff>(std::filesystem::file_size(path) / 2);
        f.seekg(mid);
        char byte = 0;
        f.get(byte);
        f.seekp(mid);
        f.put(static_cast<char>(byte ^ 0x40));
    }
    try {
        restored.load_state(path);
        FAIL() << "expected LLMEDGE_STATUS_STATE";
    } catch (const llmedge::Error &e) {
        EXPECT_EQ(e.status(), LLMEDGE_STATUS_STATE);
    }
    llmedge::Session fresh(model(), llmedge::SessionOptions().n_ctx(512).prefix_reuse(false));
    fresh.chat(history, opts);
    EXPECT_EQ(fresh.chat(history, opts).usage().cached_prompt_tokens, 0u);
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
