package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/**
 * Native memory must not grow with use. The process's VmRSS is read after a warm-up and again
 * after 200 more generate calls; the JVM heap is fixed (-Xms = -Xmx in the surefire config), so
 * growth beyond the bound means native memory is leaking. For scale: one leaked session of this
 * test's size is ~6 MiB of KV cache, so leaking any session, completion text or JNI reference per
 * call would blow well past the bound.
 */
class NativeMemoryTest {
    static final int CALLS = 200;
    static final long BOUND_KIB = 24 * 1024;

    @Test
    void rssDoesNotGrowAcross200GenerateCalls() throws Exception {
        try (Model model = TestModels.load()) {
            SessionOptions small = SessionOptions.builder().contextSize(256).build();
            GenerateOptions options = GenerateOptions.builder().greedy(true).maxTokens(4).ignoreEos(true).build();
            try (Session session = model.newSession(small)) {
                for (int i = 0; i < 30; i++) {
                    exercise(model, session, small, options, i);
                }
                System.gc();
                long before = TestModels.rssKiB();
                for (int i = 0; i < CALLS; i++) {
                    exercise(model, session, small, options, i);
                }
                System.gc();
                long after = TestModels.rssKiB();
                long grown = after - before;
                System.out.printf("VmRSS %d KiB -> %d KiB after %d generate calls (growth %d KiB, bound %d KiB)%n",
                        before, after, CALLS, grown, BOUND_KIB);
                assertTrue(grown < BOUND_KIB, "VmRSS grew by " + grown + " KiB over " + CALLS + " calls");
            }
        }
    }

    /** One generate call, alternating between paths: plain, streamed, chat, on a fresh session. */
    private static void exercise(Model model, Session session, SessionOptions small, GenerateOptions options, int i) {
        String prompt = "Request number " + i + " says";
        Completion c;
        switch (i % 4) {
            case 0:
                c = session.generate(prompt, options);
                break;
            case 1:
                StringBuilder sb = new StringBuilder();
                c = session.generate(prompt, options, piece -> sb.append(piece) != null);
                assertEquals(c.getText(), sb.toString());
                break;
            case 2:
                c = session.chat(java.util.Arrays.asList(ChatMessage.user(prompt)), options);
                break;
            default:
                try (Session fresh = model.newSession(small)) {
                    c = fresh.generate(prompt, options);
                }
                assertEquals(prompt.length() > 0, model.tokenize(prompt).length > 0);
                break;
        }
        assertEquals(4, c.getTokens().length);
    }
}
