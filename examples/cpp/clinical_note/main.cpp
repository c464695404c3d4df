// clinical_note: summarise a de-identified clinical note read from stdin, streaming to stdout.
//
//   clinical_note MODEL.gguf < note.txt
//
// Exit codes (distinct per failure, for the calling system's logs):
//   0 success           2 usage               3 model file not found   4 model file invalid
//   5 empty note        6 note too long        7 note is not UTF-8      8 other llmedge error
#include <iostream>
#include <iterator>
#include <string>

#include "llmedge.hpp"

namespace {
enum Exit { kOk = 0, kUsage = 2, kNoModel = 3, kBadModel = 4, kEmpty = 5, kTooLong = 6, kNotUtf8 = 7, kOther = 8 };

int exit_code(llmedge_status s) {
    switch (s) {
        case LLMEDGE_STATUS_MODEL_NOT_FOUND: return kNoModel;
        case LLMEDGE_STATUS_INVALID_MODEL:
        case LLMEDGE_STATUS_UNSUPPORTED_ARCHITECTURE: return kBadModel;
        case LLMEDGE_STATUS_CONTEXT_OVERFLOW: return kTooLong;
        case LLMEDGE_STATUS_INVALID_UTF8: return kNotUtf8;
        default: return kOther;
    }
}

const char *kSystem =
    "You are a clinical documentation assistant. Summarise the note for a handover in 3 short "
    "bullet points: presenting problem, key findings, plan. Do not invent facts.";
}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " MODEL.gguf < note.txt\n";
        return kUsage;
    }
    std::string note((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (note.find_first_not_of(" \t\r\n") == std::string::npos) {
        std::cerr << "error: the note on stdin is empty\n";
        return kEmpty;
    }
    try {
        llmedge::Model model(argv[1]);
        llmedge::Session session(model, llmedge::SessionOptions().n_ctx(2048));
        llmedge::GenerateOptions options;
        options.max_tokens(200).temperature(0.2f).seed(42);
        auto completion = session.chat({{"system", kSystem}, {"user", "Clinical note:\n" + note}}, options,
                                       [](std::string_view piece) {
                                           std::cout << piece << std::flush;
                                           return true;
                                       });
        std::cout << '\n';
        auto usage = completion.usage();
        std::cerr << "[" << usage.prompt_tokens << " prompt tokens, " << usage.completion_tokens
                  << " generated]\n";
        return kOk;
    } catch (const llmedge::Error &e) {
        std::cerr << "error (" << llmedge_status_name(e.status()) << "): " << e.what() << '\n';
        return exit_code(e.status());
    }
}
