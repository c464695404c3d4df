package io.llmedge.kotlin

import io.llmedge.ChatMessage
import io.llmedge.Completion
import io.llmedge.FinishReason
import io.llmedge.GenerateOptions
import io.llmedge.Llmedge
import io.llmedge.LlmedgeException
import io.llmedge.Model
import io.llmedge.Session
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CoroutinesTest {
    private lateinit var model: Model
    private lateinit var session: Session

    private val greedy32 = generateOptions { greedy(true); maxTokens(32) }

    /** Long enough that finishing it would take far longer than these tests allow. */
    private val endless = generateOptions { greedy(true); maxTokens(LONG); ignoreEos(true) }

    @BeforeAll
    fun load() = runBlocking {
        val path = System.getenv("LLMEDGE_TEST_MODEL")?.takeIf { it.isNotEmpty() } ?: Llmedge.defaultModelPath()
        model = loadModel(path, modelOptions { threads(1) })
        session = model.newSession(sessionOptions { contextSize(LONG + 64) })
    }

    @AfterAll
    fun close() {
        session.close()
        model.close()
    }

    @Test
    fun `suspend generation equals the blocking call`() = runBlocking {
        val prompt = "The capital of France is"
        val blocking = session.generate(prompt, greedy32)
        val pieces = StringBuilder()
        val suspended = session.awaitGenerate(prompt, greedy32) { pieces.append(it) }
        assertEquals(blocking.text, suspended.text)
        assertArrayEquals(blocking.tokens, suspended.tokens)
        assertEquals(blocking.text, pieces.toString())
    }

    @Test
    fun `suspend generation does not block the calling thread`() = runBlocking {
        // runBlocking has one thread: the ticker only advances if awaitGenerate suspends.
        val ticks = AtomicInteger()
        val ticker = launch {
            while (isActive) {
                ticks.incrementAndGet()
                delay(1)
            }
        }
        session.awaitGenerate("Once upon a time", generateOptions { greedy(true); maxTokens(24); ignoreEos(true) })
        ticker.cancelAndJoin()
        assertTrue(ticks.get() > 1, "ticker ran ${ticks.get()} times")
    }

    @Test
    fun `flow pieces concatenate to the blocking text`() = runBlocking {
        val prompt = "Write a short poem about the sea:"
        val blocking = session.generate(prompt, greedy32)
        val done = AtomicReference<Completion>()
        val pieces = session.generateFlow(prompt, greedy32, onCompletion = done::set).toList()
        assertTrue(pieces.size > 1, "pieces: $pieces")
        assertEquals(blocking.text, pieces.joinToString(""))
        assertArrayEquals(blocking.tokens, done.get().tokens)
        assertEquals(blocking.finishReason, done.get().finishReason)
    }

    @Test
    fun `chat flow and await chat equal the blocking chat`() = runBlocking {
        val messages = listOf(ChatMessage.system("You are terse."), ChatMessage.user("Name a colour."))
        val blocking = session.chat(messages, greedy32)
        assertEquals(blocking.text, session.chatFlow(messages, greedy32).toList().joinToString(""))
        assertEquals(blocking.text, session.awaitChat(messages, greedy32).text)
    }

    @Test
    fun `taking the first pieces cancels the native generation`() = runBlocking {
        val done = CompletableDeferred<Completion>()
        val first = session.generateFlow("Tell me everything about the ocean.", endless, onCompletion = { done.complete(it) })
            .take(3)
            .toList()
        assertEquals(3, first.size)
        // The flow completed only after the native call returned, so the completion is already there.
        assertTrue(done.isCompleted, "flow completed before the native generation stopped")
        val c = done.await()
        assertEquals(FinishReason.CANCELLED, c.finishReason)
        assertTrue(c.tokens.size < LONG / 4, "ran on for ${c.tokens.size} tokens")
    }

    @Test
    fun `cancelling the collecting coroutine cancels the native generation`() = runBlocking {
        val started = CompletableDeferred<Unit>()
        val done = CompletableDeferred<Completion>()
        val received = AtomicInteger()
        val job = launch(Dispatchers.Default) {
            session.generateFlow("Tell me everything about the ocean.", endless, onCompletion = { done.complete(it) })
                .collect {
                    received.incrementAndGet()
                    started.complete(Unit)
                }
        }
        withTimeout(60_000) { started.await() }
        val t0 = System.nanoTime()
        job.cancelAndJoin()
        val stopMs = (System.nanoTime() - t0) / 1_000_000
        assertTrue(job.isCancelled)
        assertTrue(done.isCompleted, "job finished before the native generation stopped")
        val c = done.await()
        assertEquals(FinishReason.CANCELLED, c.finishReason)
        assertTrue(c.tokens.size < LONG / 4, "ran on for ${c.tokens.size} tokens")
        assertTrue(stopMs < 30_000, "took $stopMs ms to stop")
        // The session is free again at once.
        assertEquals(4, session.generate("Hi", generateOptions { greedy(true); maxTokens(4); ignoreEos(true) }).tokens.size)
    }

    @Test
    fun `cancelling a suspended generation stops it`() = runBlocking {
        val pieces = AtomicInteger()
        val started = CompletableDeferred<Unit>()
        val job = async(Dispatchers.Default) {
            session.awaitGenerate("Tell me everything about the ocean.", endless) {
                pieces.incrementAndGet()
                started.complete(Unit)
            }
        }
        withTimeout(60_000) { started.await() }
        job.cancelAndJoin()
        assertThrows(CancellationException::class.java) { runBlocking { job.await() } }
        val stoppedAt = pieces.get()
        Thread.sleep(300)
        assertEquals(stoppedAt, pieces.get(), "generation went on after the coroutine was cancelled")
        assertTrue(stoppedAt < LONG / 4)
    }

    @Test
    fun `errors reach the collector with their code`() = runBlocking {
        val bad = generateOptions { maxTokens(-1) }
        val e = assertThrows(LlmedgeException::class.java) { runBlocking { session.generateFlow("hi", bad).collect() } }
        assertEquals(1, e.code)
        val e2 = assertThrows(LlmedgeException::class.java) { runBlocking { session.awaitGenerate("hi", bad) } }
        assertEquals(1, e2.code)
        val e3 = assertThrows(LlmedgeException::class.java) { runBlocking { loadModel("/nonexistent/model.gguf") } }
        assertEquals(10, e3.code)
        val closed = model.newSession(sessionOptions { contextSize(64) })
        closed.close()
        val e4 = assertThrows(LlmedgeException::class.java) { runBlocking { closed.generateFlow("hi").collect() } }
        assertEquals(60, e4.code)
    }

    @Test
    fun `option builders`() {
        val o: GenerateOptions = generateOptions { temperature(0.5f); topK(10); stop("\n") }
        assertEquals(0.5f, o.temperature)
        assertEquals(10, o.topK)
        assertEquals(listOf("\n"), o.stop)
        assertNotNull(modelOptions { threads(2) }.threads)
        assertFalse(o.isGreedy)
    }

    private companion object {
        const val LONG = 2000
    }
}
