package io.llmedge.example;

import io.llmedge.ChatMessage;
import io.llmedge.Completion;
import io.llmedge.GenerateOptions;
import io.llmedge.Llmedge;
import io.llmedge.LlmedgeException;
import io.llmedge.Model;
import io.llmedge.ModelOptions;
import io.llmedge.Session;
import java.util.ArrayList;
import java.util.List;

/**
 * Answer one prompt with a local model, streaming the answer to stdout.
 *
 * <pre>
 * java -cp llmedge-0.1.0.jar Example.java [--model FILE.gguf] [--max-tokens N] [--greedy] [--raw] [--threads N] PROMPT
 * </pre>
 *
 * Without --model it uses llmedge's default model (downloaded into the model cache on first use).
 * Without --raw the prompt is sent as a user message through the model's chat template.
 */
public final class Example {
    public static void main(String[] args) {
        String modelPath = null;
        int maxTokens = 128;
        boolean greedy = false;
        boolean raw = false;
        Integer threads = null;
        List<String> words = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model": modelPath = args[++i]; break;
                case "--max-tokens": maxTokens = Integer.parseInt(args[++i]); break;
                case "--greedy": greedy = true; break;
                case "--raw": raw = true; break;
                case "--threads": threads = Integer.parseInt(args[++i]); break;
                default: words.add(args[i]);
            }
        }
        String prompt = words.isEmpty() ? "Why do hospitals run language models on their own servers?" : String.join(" ", words);

        GenerateOptions options = GenerateOptions.builder().maxTokens(maxTokens).greedy(greedy).build();
        // Model and Session hold native memory: close them (try-with-resources).
        ModelOptions modelOptions = threads != null ? ModelOptions.builder().threads(threads).build() : ModelOptions.defaults();
        try (Model model = Model.load(modelPath != null ? modelPath : Llmedge.defaultModelPath(), modelOptions);
             Session session = model.newSession()) {
            // Ctrl-C stops the generation cleanly instead of killing it mid-token.
            Thread hook = new Thread(session::cancel);
            Runtime.getRuntime().addShutdownHook(hook);

            Completion c = raw
                    ? session.generateStreaming(prompt, options, Example::print)
                    : session.chatStreaming(List.of(ChatMessage.user(prompt)), options, Example::print);

            Runtime.getRuntime().removeShutdownHook(hook);
            System.out.println();
            System.out.printf("[%s: finish=%s prompt_tokens=%d completion_tokens=%d %.1f tok/s]%n",
                    model.info().getName(), c.getFinishReason().wireName(), c.getUsage().getPromptTokens(),
                    c.getUsage().getCompletionTokens(), c.getTimings().getGenerationTokensPerSecond());
        } catch (LlmedgeException e) {
            // Every failure carries a stable code: 10 model not found, 11 invalid model, 21 context overflow, ...
            System.err.println("error " + e.getCode() + " (" + e.getErrorCode() + "): " + e.getMessage());
            System.exit(e.getCode());
        }
    }

    private static void print(String piece) {
        System.out.print(piece);
        System.out.flush();
    }
}
