/**
 * Kotlin helpers for prompt templates and structured output: a named-argument template
 * constructor, `render("name" to value)`, and suspending versions of the JSON and template
 * calls of [Session].
 *
 * ```kotlin
 * val review = TemplateLibrary.builtin().get("insurance_claim_review_en")
 * val out = session.awaitRunTemplate(review, mapOf("claim" to claimJson), generateOptions { maxTokens(400) })
 * println(out.json())
 * ```
 */
@file:JvmName("LlmedgeTemplates")

package io.llmedge.kotlin

import io.llmedge.ChatMessage
import io.llmedge.DynamicFlowOutput
import io.llmedge.GenerateOptions
import io.llmedge.JsonCompletion
import io.llmedge.PromptTemplate
import io.llmedge.Session
import io.llmedge.TemplateFormat
import io.llmedge.TemplateOutput
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.withContext

/**
 * A [PromptTemplate] with named arguments, like Python's `PromptTemplate(name, template, ...)`.
 * [outputSchema] is a JSON Schema as JSON text.
 */
fun promptTemplate(
    name: String,
    template: String,
    format: TemplateFormat = TemplateFormat.FSTRING,
    system: String? = null,
    defaults: Map<String, Any?> = emptyMap(),
    outputSchema: String? = null,
    answerPrefixes: List<String> = emptyList(),
): PromptTemplate = PromptTemplate.builder(name, template)
    .format(format)
    .system(system)
    .defaults(defaults)
    .outputSchema(outputSchema)
    .answerPrefixes(answerPrefixes)
    .build()

/** [PromptTemplate.render] with pairs: `template.render("role" to "nurse", "query" to "why?")`. */
fun PromptTemplate.render(vararg variables: Pair<String, Any?>): String = render(mapOf(*variables))

/** [PromptTemplate.messages] with pairs. */
fun PromptTemplate.messages(vararg variables: Pair<String, Any?>): List<ChatMessage> = messages(mapOf(*variables))

/** [Session.generateJson], suspending; cancelling the coroutine cancels the generation. */
suspend fun Session.awaitGenerateJson(
    prompt: String,
    schemaJson: String,
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
): JsonCompletion = blockingCancellable(dispatcher) { generateJson(prompt, schemaJson, options) }

/** [Session.chatJson], suspending. */
suspend fun Session.awaitChatJson(
    messages: List<ChatMessage>,
    schemaJson: String,
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
): JsonCompletion = blockingCancellable(dispatcher) { chatJson(messages, schemaJson, options) }

/** [Session.runTemplate], suspending. */
suspend fun Session.awaitRunTemplate(
    template: PromptTemplate,
    variables: Map<String, Any?> = emptyMap(),
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
): TemplateOutput = blockingCancellable(dispatcher) { runTemplate(template, variables, options) }

/** [Session.runDynamic] (both stages), suspending. */
suspend fun Session.awaitRunDynamic(
    template: PromptTemplate,
    request: String,
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
): DynamicFlowOutput = blockingCancellable(dispatcher) { runDynamic(template, request, options) }

/**
 * Run a blocking session call on [dispatcher]. When the caller is cancelled, the session is
 * cancelled until the call returns (a cancel that lands before a generation starts, or between
 * the two stages of a dynamic flow, would otherwise be lost), then the cancellation is rethrown.
 */
private suspend fun <T> Session.blockingCancellable(
    dispatcher: CoroutineDispatcher,
    block: Session.() -> T,
): T = coroutineScope {
    val session = this@blockingCancellable
    val work = async(dispatcher) { session.block() }
    try {
        work.await()
    } catch (e: CancellationException) {
        withContext(NonCancellable) {
            while (!work.isCompleted) {
                session.cancel()
                delay(CANCEL_POLL_MS)
            }
        }
        throw e
    }
}

/** How often a cancelled call re-sends the cancel until the native call has returned. */
private const val CANCEL_POLL_MS = 10L
