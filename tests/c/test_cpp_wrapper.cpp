// GoogleTest suite for the C++ wrapper (include/llmedge.hpp) on the real default model.
// Usage: test_cpp_wrapper MODEL_PATH EXPECTED_TEXT_FILE
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "llmedge.hpp"

namespace {
std::string g_model_path;
std::string g_expected;
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

int main(int argc, char **argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_PATH EXPECTED_TEXT_FILE\n", argv[0]);
        return 2;
    }
    g_model_path = argv[1];
    std::ifstream f(argv[2], std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    g_expected = ss.str();
    return RUN_ALL_TESTS();
}
