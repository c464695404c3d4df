import CLlmedge
import Foundation

/// One conversation's state (a llama.cpp context and KV cache) on a `Model`.
///
/// One generation runs at a time on a session (concurrent calls wait their turn); `cancel()`
/// may be called from any thread. Each request starts from an empty KV cache: pass the whole
/// conversation to `chat`. The native memory is freed when the last reference goes away.
public final class Session: @unchecked Sendable {
    // `llmedge_session` serialises generations itself and allows cancel from any thread.
    let handle: OpaquePointer
    /// The model this session runs (kept alive by the session).
    public let model: Model

    public init(model: Model, options: SessionOptions = SessionOptions()) throws {
        var created: OpaquePointer?
        try options.withC { cOptions in
            try check(llmedge_session_new(model.handle, cOptions, &created))
        }
        guard let session = created else {
            throw LlmedgeError(code: LlmedgeError.internal, message: "llmedge_session_new returned no session")
        }
        handle = session
        self.model = model
    }

    deinit {
        llmedge_session_free(handle)
    }

    /// Stop the generation running on this session; it ends before its next token with
    /// `FinishReason.cancelled`. A no-op when nothing runs.
    public func cancel() {
        _ = llmedge_session_cancel(handle)
    }

    // MARK: Blocking calls (run them off the main thread)

    /// Generate from raw text (BOS added, special-token text parsed). `onPiece` receives each
    /// piece of text on the calling thread; return false to stop.
    public func generate(_ prompt: String, options: GenerateOptions = GenerateOptions(),
                         onPiece: ((String) -> Bool)? = nil) throws -> Completion {
        try run(onPiece) { callback, userData, out in
            try options.withC { cOptions in
                try prompt.withUTF8Pointer {
                    try check(llmedge_session_generate(handle, $0, $1, cOptions, callback, userData, &out))
                }
            }
        }
    }

    /// Generate from token ids, used as given.
    public func generate(tokens: [Int32], options: GenerateOptions = GenerateOptions(),
                         onPiece: ((String) -> Bool)? = nil) throws -> Completion {
        try run(onPiece) { callback, userData, out in
            // An empty Swift array may have no storage; pass a real pointer with count 0 so the
            // library reports the empty prompt (code 1) rather than a NULL pointer.
            let storage = tokens.isEmpty ? [0] : tokens
            try options.withC { cOptions in
                try storage.withUnsafeBufferPointer { buffer in
                    try check(llmedge_session_generate_tokens(handle, buffer.baseAddress, tokens.count, cOptions,
                                                              callback, userData, &out))
                }
            }
        }
    }

    /// Render `messages` with the chat template and generate the assistant's reply.
    public func chat(_ messages: [ChatMessage], options: GenerateOptions = GenerateOptions(),
                     onPiece: ((String) -> Bool)? = nil) throws -> Completion {
        guard let list = llmedge_chat_messages_new() else {
            throw LlmedgeError(code: LlmedgeError.internal, message: "llmedge_chat_messages_new failed")
        }
        defer { llmedge_chat_messages_free(list) }
        for message in messages {
            try message.role.withUTF8Pointer { role, roleLength in
                try message.content.withUTF8Pointer { content, contentLength in
                    try check(llmedge_chat_messages_add(list, role, roleLength, content, contentLength))
                }
            }
        }
        return try run(onPiece) { callback, userData, out in
            try options.withC { cOptions in
                try check(llmedge_session_chat(handle, list, cOptions, callback, userData, &out))
            }
        }
    }

    // MARK: async/await

    /// `generate` without blocking the caller: runs on its own thread; cancelling the task
    /// cancels the generation and throws `CancellationError` once it has stopped.
    public func generate(_ prompt: String, options: GenerateOptions = GenerateOptions()) async throws -> Completion {
        try await cancellable { stop in
            try self.generate(prompt, options: options) { _ in !stop.isSet }
        }
    }

    /// `chat` without blocking the caller; cancellable like `generate(_:options:) async`.
    public func chat(_ messages: [ChatMessage], options: GenerateOptions = GenerateOptions()) async throws -> Completion {
        try await cancellable { stop in
            try self.chat(messages, options: options) { _ in !stop.isSet }
        }
    }

    /// The generated text as it is produced. Generation runs on its own thread; ending the loop
    /// early (break, or cancelling the consuming task) cancels it. `onCompletion` receives the
    /// final `Completion` (usage, timings, finish reason) when the native call returns.
    ///
    /// ```swift
    /// for try await piece in session.stream("Once upon a time") { print(piece, terminator: "") }
    /// ```
    public func stream(_ prompt: String, options: GenerateOptions = GenerateOptions(),
                       onCompletion: (@Sendable (Completion) -> Void)? = nil) -> AsyncThrowingStream<String, Error> {
        pieceStream(onCompletion) { onPiece in
            try self.generate(prompt, options: options, onPiece: onPiece)
        }
    }

    /// `stream` for a conversation rendered with the chat template.
    public func chatStream(_ messages: [ChatMessage], options: GenerateOptions = GenerateOptions(),
                           onCompletion: (@Sendable (Completion) -> Void)? = nil) -> AsyncThrowingStream<String, Error> {
        pieceStream(onCompletion) { onPiece in
            try self.chat(messages, options: options, onPiece: onPiece)
        }
    }

    // MARK: Plumbing

    private func run(_ onPiece: ((String) -> Bool)?,
                     _ call: (llmedge_piece_callback?, UnsafeMutableRawPointer?, inout OpaquePointer?) throws -> Void)
        throws -> Completion {
        var out: OpaquePointer?
        if let onPiece {
            let sink = PieceSink(onPiece)
            try withExtendedLifetime(sink) {
                try call(pieceTrampoline, Unmanaged.passUnretained(sink).toOpaque(), &out)
            }
        } else {
            try call(nil, nil, &out)
        }
        guard let completion = out else {
            throw LlmedgeError(code: LlmedgeError.internal, message: "generation returned no completion")
        }
        return try Completion(taking: completion)
    }

    private func cancellable(_ work: @escaping @Sendable (StopFlag) throws -> Completion) async throws -> Completion {
        let stop = StopFlag()
        return try await withTaskCancellationHandler {
            let completion = try await runBlocking { try work(stop) }
            try Task.checkCancellation()
            return completion
        } onCancel: {
            // The flag also stops a generation that had not started when the task was cancelled.
            stop.set()
            self.cancel()
        }
    }

    private func pieceStream(_ onCompletion: (@Sendable (Completion) -> Void)?,
                             _ work: @escaping @Sendable (@escaping (String) -> Bool) throws -> Completion)
        -> AsyncThrowingStream<String, Error> {
        AsyncThrowingStream { continuation in
            let stop = StopFlag()
            continuation.onTermination = { [weak self] termination in
                if case .cancelled = termination {
                    stop.set()
                    self?.cancel()
                }
            }
            let thread = Thread {
                do {
                    let completion = try work { piece in
                        if stop.isSet { return false }
                        if case .terminated = continuation.yield(piece) { return false }
                        return true
                    }
                    onCompletion?(completion)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

/// Holds a Swift closure for the C callback's `user_data`.
private final class PieceSink {
    let onPiece: (String) -> Bool

    init(_ onPiece: @escaping (String) -> Bool) {
        self.onPiece = onPiece
    }
}

/// The C streaming callback: forwards each piece to the `PieceSink` in `user_data`.
private let pieceTrampoline: llmedge_piece_callback = { piece, length, userData in
    guard let userData else { return false }
    let sink = Unmanaged<PieceSink>.fromOpaque(userData).takeUnretainedValue()
    let text = piece.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""
    return sink.onPiece(text)
}

/// A flag set from one thread and read on another.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false

    func set() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }
}
