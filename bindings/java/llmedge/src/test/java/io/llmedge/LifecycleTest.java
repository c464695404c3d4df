package io.llmedge;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class LifecycleTest {
    private static void assertClosed(Executable call) {
        LlmedgeException e = assertThrows(LlmedgeException.class, call);
        assertEquals(60, e.getCode(), e.toString());
        assertEquals(ErrorCode.CLOSED, e.getErrorCode());
    }

    @Test
    void closeTwiceIsHarmlessAndUseAfterCloseThrows() {
        Model model = TestModels.load();
        Session session = model.newSession(SessionOptions.builder().contextSize(128).build());
        session.close();
        session.close();
        assertTrue(session.isClosed());
        assertClosed(() -> session.generate("Hi", TestModels.greedy(2)));
        assertClosed(() -> session.generate("Hi", TestModels.greedy(2), p -> true));
        assertClosed(() -> session.stream("Hi", TestModels.greedy(2)).completion());
        assertClosed(() -> session.chat(Arrays.asList(ChatMessage.user("hi")), TestModels.greedy(2)));
        assertClosed(() -> session.renderChat(Arrays.asList(ChatMessage.user("hi"))));
        assertClosed(session::contextSize);
        session.cancel(); // a no-op on a closed session

        model.close();
        model.close();
        assertTrue(model.isClosed());
        assertClosed(() -> model.tokenize("hi"));
        assertClosed(() -> model.detokenize(new int[] {1}));
        assertClosed(() -> model.embed("hi"));
        assertClosed(model::sha256);
        assertClosed(model::newSession);
        assertClosed(() -> new Session(model));
        assertEquals("llama", model.info().getArchitecture()); // metadata stays readable
    }

    @Test
    void sessionsOutliveTheirModelObject() {
        Model model = TestModels.load();
        Session session = model.newSession(SessionOptions.builder().contextSize(128).build());
        Completion before = session.generate("The sky is", TestModels.greedy(4));
        model.close();
        Completion after = session.generate("The sky is", TestModels.greedy(4));
        assertArrayEquals(before.getTokens(), after.getTokens());
        session.close();
    }

    @Test
    void tryWithResources() {
        String text;
        try (Model model = TestModels.load(); Session session = new Session(model, SessionOptions.builder().contextSize(128).build())) {
            assertEquals(128, session.contextSize());
            text = session.generate("The sky is", TestModels.greedy(4)).getText();
        }
        assertFalse(text.isEmpty());
    }

    @Test
    void closingFreesTheNativeHandle() {
        Model model = TestModels.load();
        Session a = model.newSession(SessionOptions.builder().contextSize(64).build());
        Session b = new Session(model, SessionOptions.builder().contextSize(64).build());
        long[] handles = {model.handleForTesting(), a.handleForTesting(), b.handleForTesting()};
        for (long h : handles) {
            assertNotEquals(0, h);
            assertTrue(NativeResource.isLive(h));
        }
        a.close();
        model.close();
        assertEquals(0, a.handleForTesting());
        assertEquals(0, model.handleForTesting());
        assertFalse(NativeResource.isLive(handles[0]));
        assertFalse(NativeResource.isLive(handles[1]));
        assertTrue(NativeResource.isLive(handles[2]), "closing the model must not free its sessions");
        b.close();
        b.close();
        assertFalse(NativeResource.isLive(handles[2]));
    }

    @Test
    void unclosedObjectsAreFreedOnceUnreachable() throws InterruptedException {
        List<Long> handles = openAndForget(10);
        assertEquals(11, handles.size());
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (handles.stream().anyMatch(NativeResource::isLive) && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(50);
        }
        assertFalse(handles.stream().anyMatch(NativeResource::isLive), "handles of unreachable objects were not freed");
    }

    private static List<Long> openAndForget(int sessions) {
        List<Long> handles = new ArrayList<>();
        Model model = TestModels.load();
        handles.add(model.handleForTesting());
        for (int i = 0; i < sessions; i++) {
            handles.add(model.newSession(SessionOptions.builder().contextSize(64).build()).handleForTesting());
        }
        return handles;
    }

    @Test
    void aRustPanicBecomesAnExceptionNotACrash() {
        LlmedgeException e = assertThrows(LlmedgeException.class, () -> NativeBridge.panicForTesting("boom"));
        assertEquals(99, e.getCode());
        assertTrue(e.getMessage().contains("boom"), e.getMessage());
        // And the JVM and the library carry on.
        assertEquals(99, assertThrows(LlmedgeException.class, () -> NativeBridge.panicForTesting("again")).getCode());
        assertFalse(Llmedge.version().isEmpty());
    }

    @Test
    void nativeLibraryComesFromTheJarResource() {
        String source = Llmedge.nativeLibrarySource();
        // The build does not put the library on java.library.path, so it must have been extracted.
        assertEquals("/native/" + NativeLibrary.platform() + "/" + System.mapLibraryName(NativeLibrary.NAME), source);
        assertEquals("0.1.0", Llmedge.version());
    }
}
