package io.llmedge.kotlin

import io.llmedge.ChatMessage
import io.llmedge.Completion
import io.llmedge.Engine
import io.llmedge.ErrorCode
import io.llmedge.FinishReason
import io.llmedge.Llmedge
import io.llmedge.LlmedgeException
import io.llmedge.Model
import java.time.Duration
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance

/** The engine's coroutine layer; every output is checked against the same request alone on a session. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EngineCoroutinesTest {
    private lateinit var model: Model
    private lateinit var engine: Engine

    private val greedy = generateOptions { greedy(true); maxTokens(20) }
    private val endless = generateOptions { greedy(true); maxTokens(300); ignoreEos(true) }
    private val questions = listOf("What is the capital of France?", "Name three colours of the rainbow.", "What is 12 times 12?")

    @BeforeAll
    fun load() = runBlocking {
        val path = System.getenv("LLMEDGE_TEST_MODEL")?.takeIf { it.isNotEmpty() } ?: Llmedge.defaultModelPath()
        model = loadModel(path, modelOptions { threads(1) })
        engine = Engine(model, engineOptions { slots(3); sessionOptions(sessionOptions { contextSize(512) }) })
    }

    @AfterAll
    fun close() {
        engine.close()
        model.close()
    }

    private fun alone(question: String): IntArray =
        model.newSession(sessionOptions { contextSize(512) }).use { it.chat(listOf(ChatMessage.user(question)), greedy).tokens }

    @Test
    fun `concurrent awaits and flows equal each request alone`() = runBlocking {
        val expected = questions.map { alone(it) }
        // runBlocking has one thread: the ticker only advances if the awaits suspend.
        val ticks = AtomicInteger()
        val ticker = launch {
            while (isActive) {
                ticks.incrementAndGet()
                delay(1)
            }
        }
        val completions = questions.map { q -> async { engine.awaitChat(listOf(ChatMessage.user(q)), greedy) } }.awaitAll()
        ticker.cancelAndJoin()
        for (i in questions.indices) {
            assertArrayEquals(expected[i], completions[i].tokens, questions[i])
        }
        assertTrue(ticks.get() > 1, "ticker ran ${ticks.get()} times")
        val done = AtomicReference<Completion>()
        val pieces = engine.chatFlow(listOf(ChatMessage.user(questions[0])), greedy, onCompletion = done::set).toList()
        assertEquals(completions[0].text, pieces.joinToString(""))
        assertArrayEquals(expected[0], done.get().tokens)
        assertEquals(engine.generate("Hello", greedy).text, engine.awaitGenerate("Hello", greedy).text)
    }

    @Test
    fun `taking the first pieces or cancelling the coroutine cancels the request`() = runBlocking {
        val done = CompletableDeferred<Completion>()
        val first = engine.generateFlow("Once upon a time", endless, onCompletion = { done.complete(it) }).take(3).toList()
        assertEquals(3, first.size)
        val c = withTimeout(60_000) { done.await() }
        assertEquals(FinishReason.CANCELLED, c.finishReason)
        assertTrue(c.tokens.size < 300, "ran on for ${c.tokens.size} tokens")
        val request = engine.submit("Once upon a time", endless, null)
        val waiter = async { request.awaitCompletion() }
        delay(200)
        waiter.cancelAndJoin()
        assertEquals(FinishReason.CANCELLED, request.await().finishReason)
    }

    @Test
    fun `failures keep their codes`() = runBlocking {
        val timeout = assertThrows(LlmedgeException::class.java) {
            runBlocking { engine.awaitGenerate("Once upon a time", endless, Duration.ofMillis(200)) }
        }
        assertEquals(ErrorCode.TIMEOUT, timeout.errorCode)
        val flowTimeout = assertThrows(LlmedgeException::class.java) {
            runBlocking { engine.generateFlow("Once upon a time", endless, Duration.ofMillis(200)).toList() }
        }
        assertEquals(ErrorCode.TIMEOUT, flowTimeout.errorCode)
    }
}
