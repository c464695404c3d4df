package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ConcurrencyTest {
    static final String[] PROMPTS = {
        "The capital of France is",
        "def add(a, b):",
        "Water boils at",
        "In 1969, astronauts",
    };

    @Test
    void manyThreadsOnOneModelGiveTheSequentialTokens() throws Exception {
        int threads = PROMPTS.length;
        try (Model model = TestModels.load()) {
            SessionOptions options = SessionOptions.builder().contextSize(128).threads(1).build();
            List<int[]> sequential = new ArrayList<>();
            try (Session session = model.newSession(options)) {
                for (String p : PROMPTS) {
                    sequential.add(session.generate(p, TestModels.greedy(24)).getTokens());
                }
            }

            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                CyclicBarrier together = new CyclicBarrier(threads);
                List<Future<List<int[]>>> results = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int first = t;
                    Callable<List<int[]>> job = () -> {
                        List<int[]> mine = new ArrayList<>();
                        try (Session session = model.newSession(options)) {
                            together.await(60, TimeUnit.SECONDS);
                            // Each thread runs every prompt, starting at a different one.
                            for (int i = 0; i < PROMPTS.length; i++) {
                                mine.add(session.generate(PROMPTS[(first + i) % PROMPTS.length], TestModels.greedy(24))
                                        .getTokens());
                            }
                        }
                        return mine;
                    };
                    results.add(pool.submit(job));
                }
                for (int t = 0; t < threads; t++) {
                    List<int[]> mine = results.get(t).get(300, TimeUnit.SECONDS);
                    for (int i = 0; i < mine.size(); i++) {
                        int prompt = (t + i) % PROMPTS.length;
                        assertArrayEquals(sequential.get(prompt), mine.get(i),
                                "thread " + t + " prompt '" + PROMPTS[prompt] + "'");
                    }
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void oneSessionSharedByThreadsRunsOneGenerationAtATime() throws Exception {
        try (Model model = TestModels.load();
             Session session = model.newSession(SessionOptions.builder().contextSize(128).build())) {
            int[] expected = session.generate(PROMPTS[0], TestModels.greedy(16)).getTokens();
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<int[]>> results = new ArrayList<>();
                for (int t = 0; t < 4; t++) {
                    results.add(pool.submit(() -> session.generate(PROMPTS[0], TestModels.greedy(16)).getTokens()));
                }
                for (Future<int[]> r : results) {
                    assertArrayEquals(expected, r.get(120, TimeUnit.SECONDS));
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }
}
