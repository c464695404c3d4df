/**
 * Coroutine-friendly llmedge: suspending generation and [Flow] streaming over the Java API.
 *
 * Generation is blocking native work, so it runs on [Dispatchers.IO] (or the dispatcher you
 * pass) and never blocks the caller's thread. Cancelling the calling coroutine, or the coroutine
 * collecting a flow, cancels the native generation; the call returns only once it has stopped,
 * so the session is free again when the coroutine finishes.
 *
 * ```kotlin
 * val model = loadModel(Llmedge.defaultModelPath())
 * model.newSession().use { session ->
 *     session.generateFlow("Once upon a time", generateOptions { maxTokens(64) })
 *         .collect { print(it) }
 * }
 * ```
 *
 * The serving [Engine] gets the same shapes: [Engine.awaitGenerate], [Engine.awaitChat],
 * [Engine.generateFlow], [Engine.chatFlow] and [EngineRequest.awaitCompletion]. Its requests run on
 * the engine's scheduler thread, so these never block a thread while waiting; cancelling the
 * coroutine (or the collector) cancels the request.
 */
@file:JvmName("LlmedgeCoroutines")

package io.llmedge.kotlin

import io.llmedge.ChatMessage
import io.llmedge.Completion
import io.llmedge.Engine
import io.llmedge.EngineListener
import io.llmedge.EngineOptions
import io.llmedge.EngineRequest
import io.llmedge.GenerateOptions
import io.llmedge.LlmedgeException
import io.llmedge.Model
import io.llmedge.ModelOptions
import io.llmedge.Session
import io.llmedge.SessionOptions
import io.llmedge.TokenListener
import java.time.Duration
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.channels.trySendBlocking
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.future.await
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** Build [GenerateOptions] with the Java builder: `generateOptions { greedy(true); maxTokens(32) }`. */
inline fun generateOptions(block: GenerateOptions.Builder.() -> Unit): GenerateOptions =
    GenerateOptions.builder().apply(block).build()

/** Build [SessionOptions]: `sessionOptions { contextSize(2048) }`. */
inline fun sessionOptions(block: SessionOptions.Builder.() -> Unit): SessionOptions =
    SessionOptions.builder().apply(block).build()

/** Build [EngineOptions]: `engineOptions { slots(4); maxQueue(32) }`. */
inline fun engineOptions(block: EngineOptions.Builder.() -> Unit): EngineOptions =
    EngineOptions.builder().apply(block).build()

/** Build [ModelOptions]: `modelOptions { threads(4) }`. */
inline fun modelOptions(block: ModelOptions.Builder.() -> Unit): ModelOptions =
    ModelOptions.builder().apply(block).build()

/** Load a model without blocking the caller's thread. */
suspend fun loadModel(
    path: String,
    options: ModelOptions = ModelOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
): Model = withContext(dispatcher) { Model.load(path, options) }

/**
 * Generate to the end, suspending instead of blocking. [onPiece] (optional) sees each piece on
 * the generating thread. Cancelling the coroutine cancels the generation and throws
 * [CancellationException] once it has stopped.
 */
suspend fun Session.awaitGenerate(
    prompt: String,
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
    onPiece: ((String) -> Unit)? = null,
): Completion = cancellable(dispatcher) { listener ->
    generate(prompt, options, listener.withPieces(onPiece))
}

/** [awaitGenerate] for a conversation rendered with the chat template. */
suspend fun Session.awaitChat(
    messages: List<ChatMessage>,
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
    onPiece: ((String) -> Unit)? = null,
): Completion = cancellable(dispatcher) { listener ->
    chat(messages, options, listener.withPieces(onPiece))
}

/**
 * The generated text as a cold [Flow] of pieces: each collection runs one generation. The
 * concatenated pieces equal the blocking call's text. Cancelling the collector (or taking only
 * the first pieces) cancels the native generation; [onCompletion] receives the final
 * [Completion] (usage, timings, finish reason [io.llmedge.FinishReason.CANCELLED] when cut short)
 * when the native call returns. Errors surface in the collector as [io.llmedge.LlmedgeException].
 */
fun Session.generateFlow(
    prompt: String,
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
    onCompletion: ((Completion) -> Unit)? = null,
): Flow<String> = pieceFlow(dispatcher, onCompletion) { listener -> generate(prompt, options, listener) }

/** [generateFlow] for a conversation rendered with the chat template. */
fun Session.chatFlow(
    messages: List<ChatMessage>,
    options: GenerateOptions = GenerateOptions.defaults(),
    dispatcher: CoroutineDispatcher = Dispatchers.IO,
    onCompletion: ((Completion) -> Unit)? = null,
): Flow<String> = pieceFlow(dispatcher, onCompletion) { listener -> chat(messages, options, listener) }

/** A listener that stops generation once [stopped] is set, for cancellation that races the start. */
private class StopListener(private val stopped: AtomicBoolean, private val send: (String) -> Boolean) : TokenListener {
    override fun onToken(piece: String): Boolean = !stopped.get() && send(piece)

    fun withPieces(onPiece: ((String) -> Unit)?): TokenListener =
        if (onPiece == null) this else TokenListener { piece -> onToken(piece).also { if (it) onPiece(piece) } }
}

private suspend fun Session.cancellable(
    dispatcher: CoroutineDispatcher,
    block: Session.(StopListener) -> Completion,
): Completion = coroutineScope {
    val session = this@cancellable
    val stopped = AtomicBoolean(false)
    val work = async(dispatcher) { session.block(StopListener(stopped) { true }) }
    try {
        work.await()
    } catch (e: CancellationException) {
        // Stop the native call (the listener flag also covers a generation that has not started
        // yet); coroutineScope then waits for it to return before rethrowing.
        stopped.set(true)
        session.cancel()
        throw e
    }
}

private fun Session.pieceFlow(
    dispatcher: CoroutineDispatcher,
    onCompletion: ((Completion) -> Unit)?,
    block: Session.(TokenListener) -> Completion,
): Flow<String> = callbackFlow {
    val session = this@pieceFlow
    val stopped = AtomicBoolean(false)
    // Blocks the generating thread while the collector is behind (bounded buffer): backpressure.
    val listener = StopListener(stopped) { piece -> trySendBlocking(piece).isSuccess }
    launch(dispatcher) {
        try {
            val completion = session.block(listener)
            onCompletion?.invoke(completion)
            close()
        } catch (e: Throwable) {
            close(e)
        }
    }
    awaitClose {
        // The collector is gone (done, failed or cancelled): stop generating. The producer scope
        // waits for the generating coroutine, so the flow completes only after the native call.
        stopped.set(true)
        session.cancel()
    }
}.buffer(FLOW_BUFFER)

/** Pieces the generating thread may run ahead of a slow collector. */
private const val FLOW_BUFFER = 64

/**
 * Wait for an engine request's [Completion] without blocking a thread. Cancelling the coroutine
 * cancels the request (it stops before its next token) and throws [CancellationException]; a
 * failed request throws its [LlmedgeException].
 */
suspend fun EngineRequest.awaitCompletion(): Completion =
    try {
        future().await()
    } catch (e: CancellationException) {
        cancel()
        throw e
    }

/** Submit [prompt] to the engine and suspend until its [Completion] (see [awaitCompletion]). */
suspend fun Engine.awaitGenerate(
    prompt: String,
    options: GenerateOptions = GenerateOptions.defaults(),
    timeout: Duration? = null,
): Completion = submit(prompt, options, timeout, null).use { it.awaitCompletion() }

/** [awaitGenerate] for a conversation rendered with the chat template. */
suspend fun Engine.awaitChat(
    messages: List<ChatMessage>,
    options: GenerateOptions = GenerateOptions.defaults(),
    timeout: Duration? = null,
): Completion = submitChat(messages, options, timeout, null).use { it.awaitCompletion() }

/**
 * An engine request's text as a cold [Flow] of pieces: each collection submits one request. The
 * pieces never wait for a slow collector (that would stall the engine's other requests): they
 * are buffered. Cancelling the collector (or taking only the first pieces) cancels the request;
 * [onCompletion] receives its [Completion] when it ends. A full queue, a deadline or any other
 * failure surfaces in the collector as [LlmedgeException].
 */
fun Engine.generateFlow(
    prompt: String,
    options: GenerateOptions = GenerateOptions.defaults(),
    timeout: Duration? = null,
    onCompletion: ((Completion) -> Unit)? = null,
): Flow<String> = engineFlow(onCompletion) { listener -> submit(prompt, options, timeout, listener) }

/** [generateFlow] for a conversation rendered with the chat template. */
fun Engine.chatFlow(
    messages: List<ChatMessage>,
    options: GenerateOptions = GenerateOptions.defaults(),
    timeout: Duration? = null,
    onCompletion: ((Completion) -> Unit)? = null,
): Flow<String> = engineFlow(onCompletion) { listener -> submitChat(messages, options, timeout, listener) }

private fun engineFlow(
    onCompletion: ((Completion) -> Unit)?,
    submit: (EngineListener) -> EngineRequest,
): Flow<String> = callbackFlow {
    val listener = object : EngineListener {
        // On the scheduler thread: never block it (the channel is unbounded).
        override fun onPiece(piece: String): Boolean = trySend(piece).isSuccess

        override fun onDone(completion: Completion?, error: LlmedgeException?) {
            if (completion != null) {
                onCompletion?.invoke(completion)
            }
            close(error)
        }
    }
    val request = submit(listener)
    awaitClose {
        // Done, failed or the collector is gone: stop generating (a no-op once it has ended).
        request.cancel()
        request.close()
    }
}.buffer(Channel.UNLIMITED)
