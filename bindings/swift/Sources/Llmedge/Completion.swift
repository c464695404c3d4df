import CLlmedge

/// Why generation ended.
public enum FinishReason: String, Sendable {
    /// An end-of-generation token or a stop string.
    case stop
    /// `maxTokens` or the context window was reached.
    case length
    /// `Session.cancel()`, a callback returning false, or a cancelled task/stream.
    case cancelled
    /// The safety policy refused the input or stopped the output.
    case contentFilter = "content_filter"
}

/// Token counts of a request.
public struct Usage: Equatable, Sendable {
    public let promptTokens: Int
    public let completionTokens: Int
}

/// Where the time of a request went.
public struct Timings: Sendable {
    public let timeToFirstTokenMs: Double
    public let promptMs: Double
    public let generationMs: Double
    public let promptTokensPerSecond: Double
    public let generationTokensPerSecond: Double
}

/// The result of a finished generation.
public struct Completion: Sendable {
    public let text: String
    public let tokens: [Int32]
    public let finishReason: FinishReason
    public let usage: Usage
    public let timings: Timings

    /// Read a C completion and free it.
    init(taking completion: OpaquePointer) throws {
        defer { llmedge_completion_free(completion) }

        var textPointer: UnsafePointer<CChar>?
        var textLength = 0
        try check(llmedge_completion_text(completion, &textPointer, &textLength))
        text = textPointer.map {
            String(decoding: UnsafeRawBufferPointer(start: $0, count: textLength), as: UTF8.self)
        } ?? ""

        var tokenPointer: UnsafePointer<llmedge_token>?
        var tokenCount = 0
        try check(llmedge_completion_tokens(completion, &tokenPointer, &tokenCount))
        tokens = tokenPointer.map { Array(UnsafeBufferPointer(start: $0, count: tokenCount)) } ?? []

        var reason = LLMEDGE_FINISH_STOP
        try check(llmedge_completion_finish_reason(completion, &reason))
        switch reason {
        case LLMEDGE_FINISH_LENGTH: finishReason = .length
        case LLMEDGE_FINISH_CANCELLED: finishReason = .cancelled
        case LLMEDGE_FINISH_CONTENT_FILTER: finishReason = .contentFilter
        default: finishReason = .stop
        }

        var promptTokens: UInt32 = 0
        var completionTokens: UInt32 = 0
        try check(llmedge_completion_usage(completion, &promptTokens, &completionTokens))
        usage = Usage(promptTokens: Int(promptTokens), completionTokens: Int(completionTokens))

        func timing(_ which: llmedge_timing) throws -> Double {
            var value = 0.0
            try check(llmedge_completion_timing(completion, Int32(truncatingIfNeeded: which.rawValue), &value))
            return value
        }
        timings = Timings(
            timeToFirstTokenMs: try timing(LLMEDGE_TIMING_TIME_TO_FIRST_TOKEN_MS),
            promptMs: try timing(LLMEDGE_TIMING_PROMPT_MS),
            generationMs: try timing(LLMEDGE_TIMING_GENERATION_MS),
            promptTokensPerSecond: try timing(LLMEDGE_TIMING_PROMPT_TOKENS_PER_SECOND),
            generationTokensPerSecond: try timing(LLMEDGE_TIMING_GENERATION_TOKENS_PER_SECOND)
        )
    }
}
