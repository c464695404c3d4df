package io.llmedge.kotlin

import io.llmedge.ChatMessage
import io.llmedge.ErrorCode
import io.llmedge.FinishReason
import io.llmedge.Llmedge
import io.llmedge.LlmedgeException
import io.llmedge.Model
import io.llmedge.Session
import io.llmedge.TemplateLibrary
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TemplatesTest {
    private lateinit var model: Model
    private lateinit var session: Session

    @BeforeAll
    fun load() = runBlocking {
        val path = System.getenv("LLMEDGE_TEST_MODEL")?.takeIf { it.isNotEmpty() } ?: Llmedge.defaultModelPath()
        model = loadModel(path, modelOptions { threads(1) })
        session = model.newSession(sessionOptions { contextSize(2048) })
    }

    @AfterAll
    fun close() {
        session.close()
        model.close()
    }

    @Test
    fun `named arguments build a template and pairs render it`() {
        val t = promptTemplate(
            name = "cot",
            template = "As a {role}, answer: {query}",
            system = "Think step by step.",
            defaults = mapOf("role" to "doctor"),
            answerPrefixes = listOf("Answer:"),
        )
        assertEquals(listOf("query"), t.requiredVariables())
        assertEquals("As a doctor, answer: why?", t.render("query" to "why?"))
        assertEquals(
            listOf(ChatMessage.system("Think step by step."), ChatMessage.user("As a nurse, answer: 3")),
            t.messages("role" to "nurse", "query" to 3),
        )
        assertEquals("4", t.extractAnswer("2+2=4\nAnswer: 4"))
        val e = assertThrows(LlmedgeException::class.java) { t.render("qeury" to "typo") }
        assertEquals(ErrorCode.TEMPLATE_VARIABLES, e.errorCode)
        assertTrue(e.message!!.contains("missing variables: query") && e.message!!.contains("unknown variables: qeury"))
    }

    @Test
    fun `suspending template run returns a schema verdict`() = runBlocking {
        val claim = """{"claim_id":"CLM-1","diagnosis":"pneumonia","policy_coverage":["pneumonia"],""" +
            """"hospital_level":"secondary","policy_min_hospital_level":"secondary"}"""
        val review = TemplateLibrary.builtin().get("insurance_claim_review_en")
        val out = session.awaitRunTemplate(review, mapOf("claim" to claim), generateOptions { temperature(0.7f); seed(7); maxTokens(400) })
        val json: String = requireNotNull(out.json()) { "schema templates return JSON" }
        assertTrue(Regex(""""verdict":"(approve|reject|manual_review)"""").containsMatchIn(json), json)

        val choice = session.awaitGenerate("Is the sky blue? Answer:", generateOptions { seed(1); maxTokens(4); choices("yes", "no") })
        assertTrue(choice.text == "yes" || choice.text == "no", choice.text)
        val parsed = session.awaitGenerateJson("JSON: ", """{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}""",
            generateOptions { greedy(true); maxTokens(40) })
        assertTrue(Regex("""^\{"n":-?\d+\}$""").matches(parsed.json()), parsed.json())
    }

    @Test
    fun `cancelling a suspended template run stops the generation`() = runBlocking {
        val role = TemplateLibrary.builtin().get("role_en")
        val endless = generateOptions { greedy(true); maxTokens(1900); ignoreEos(true) }
        val started = System.nanoTime()
        val failure = runCatching {
            withTimeout(300) { session.awaitRunTemplate(role, mapOf("role" to "poet", "query" to "the sea"), endless) }
        }.exceptionOrNull()
        assertTrue(failure is TimeoutCancellationException, "got $failure")
        assertTrue((System.nanoTime() - started) / 1_000_000 < 15_000, "the generation ran on after the cancel")
        // The session is free again.
        val next = session.awaitRunTemplate(role, mapOf("role" to "poet", "query" to "the sea"), generateOptions { greedy(true); maxTokens(4) })
        assertTrue(next.completion().finishReason != FinishReason.CANCELLED)
    }
}
