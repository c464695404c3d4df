import CLlmedge

/// How to load a model.
public struct ModelOptions: Sendable {
    /// Layers to offload to the GPU (0 = CPU only, `UInt32.max` = all; needs a Metal/GPU build).
    public var gpuLayers: UInt32
    /// Map the file instead of reading it.
    public var useMmap: Bool
    /// Lock the weights in RAM.
    public var useMlock: Bool
    /// Default thread count of this model's sessions (nil: all cores).
    public var threads: UInt32?
    /// Hash the file at load so `ModelInfo.sha256` is filled in.
    public var computeSHA256: Bool
    /// Most tokens one request's prompt may have (nil: no limit); longer is `LlmedgeError.limit`.
    public var maxPromptTokens: UInt32?
    /// Most sequences open on the model at once (nil: no limit); one more is `LlmedgeError.busy`.
    public var maxSessions: UInt32?

    public init(gpuLayers: UInt32 = 0, useMmap: Bool = true, useMlock: Bool = false, threads: UInt32? = nil,
                computeSHA256: Bool = false, maxPromptTokens: UInt32? = nil, maxSessions: UInt32? = nil) {
        self.gpuLayers = gpuLayers
        self.useMmap = useMmap
        self.useMlock = useMlock
        self.threads = threads
        self.computeSHA256 = computeSHA256
        self.maxPromptTokens = maxPromptTokens
        self.maxSessions = maxSessions
    }

    func withC<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        guard let options = llmedge_model_options_new() else {
            throw LlmedgeError(code: LlmedgeError.internal, message: "llmedge_model_options_new failed")
        }
        defer { llmedge_model_options_free(options) }
        try check(llmedge_model_options_set_n_gpu_layers(options, gpuLayers))
        try check(llmedge_model_options_set_use_mmap(options, useMmap))
        try check(llmedge_model_options_set_use_mlock(options, useMlock))
        if let threads { try check(llmedge_model_options_set_threads(options, threads)) }
        try check(llmedge_model_options_set_compute_sha256(options, computeSHA256))
        if let maxPromptTokens { try check(llmedge_model_options_set_max_prompt_tokens(options, maxPromptTokens)) }
        if let maxSessions { try check(llmedge_model_options_set_max_sessions(options, maxSessions)) }
        return try body(options)
    }
}

/// How to create a session. nil values take llmedge's defaults.
public struct SessionOptions: Sendable {
    /// Context window in tokens (default: the model's training context, at most 4096).
    public var contextSize: UInt32?
    /// Most prompt tokens per llama.cpp call (default 2048).
    public var batchSize: UInt32?
    /// Physical micro-batch (default 512).
    public var microBatchSize: UInt32?
    /// Threads for generation (default: the model's).
    public var threads: UInt32?
    /// Threads for prompt evaluation (default: same as `threads`).
    public var batchThreads: UInt32?
    /// A Jinja chat template or a built-in name such as "chatml" (default: the model's own).
    public var chatTemplate: String?

    public init(contextSize: UInt32? = nil, batchSize: UInt32? = nil, microBatchSize: UInt32? = nil,
                threads: UInt32? = nil, batchThreads: UInt32? = nil, chatTemplate: String? = nil) {
        self.contextSize = contextSize
        self.batchSize = batchSize
        self.microBatchSize = microBatchSize
        self.threads = threads
        self.batchThreads = batchThreads
        self.chatTemplate = chatTemplate
    }

    func withC<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        guard let options = llmedge_session_options_new() else {
            throw LlmedgeError(code: LlmedgeError.internal, message: "llmedge_session_options_new failed")
        }
        defer { llmedge_session_options_free(options) }
        if let contextSize { try check(llmedge_session_options_set_n_ctx(options, contextSize)) }
        if let batchSize { try check(llmedge_session_options_set_n_batch(options, batchSize)) }
        if let microBatchSize { try check(llmedge_session_options_set_n_ubatch(options, microBatchSize)) }
        if let threads { try check(llmedge_session_options_set_threads(options, threads)) }
        if let batchThreads { try check(llmedge_session_options_set_threads_batch(options, batchThreads)) }
        if let chatTemplate {
            try chatTemplate.withUTF8Pointer { try check(llmedge_session_options_set_chat_template(options, $0, $1)) }
        }
        return try body(options)
    }
}

/// What to do when the prompt plus `maxTokens` does not fit in the context.
public enum Truncation: Int32, Sendable {
    /// Fail with code 21 (context_overflow) before decoding (the default).
    case error = 0
    /// Drop the oldest prompt tokens (keeping BOS) until the request fits.
    case dropOldest = 1
}

/// Options of one generation request; the defaults are llmedge's (llama.cpp's usual sampling).
public struct GenerateOptions: Sendable {
    /// Most tokens to generate (at least 1); nil = until the context is full.
    public var maxTokens: Int?
    public var temperature: Float
    public var topK: Int32
    public var topP: Float
    public var minP: Float
    public var repeatPenalty: Float
    public var frequencyPenalty: Float
    public var presencePenalty: Float
    public var penaltyLastN: Int32
    /// Fixed RNG seed (nil: random per request).
    public var seed: UInt32?
    /// Always take the most likely token (deterministic).
    public var greedy: Bool
    /// Generation ends before any of these; they are not part of the output.
    public var stop: [String]
    /// Token id -> logit bias (`-Float.infinity` bans the token).
    public var logitBias: [Int32: Float]
    /// Keep generating past end-of-generation tokens.
    public var ignoreEos: Bool
    public var truncation: Truncation

    public init(maxTokens: Int? = 256, temperature: Float = 0.8, topK: Int32 = 40, topP: Float = 0.95,
                minP: Float = 0.05, repeatPenalty: Float = 1.0, frequencyPenalty: Float = 0,
                presencePenalty: Float = 0, penaltyLastN: Int32 = 64, seed: UInt32? = nil, greedy: Bool = false,
                stop: [String] = [], logitBias: [Int32: Float] = [:], ignoreEos: Bool = false,
                truncation: Truncation = .error) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.frequencyPenalty = frequencyPenalty
        self.presencePenalty = presencePenalty
        self.penaltyLastN = penaltyLastN
        self.seed = seed
        self.greedy = greedy
        self.stop = stop
        self.logitBias = logitBias
        self.ignoreEos = ignoreEos
        self.truncation = truncation
    }

    /// Deterministic decoding of at most `maxTokens` tokens.
    public static func greedy(maxTokens: Int? = 256) -> GenerateOptions {
        GenerateOptions(maxTokens: maxTokens, temperature: 0, greedy: true)
    }

    func withC<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        guard let options = llmedge_generate_options_new() else {
            throw LlmedgeError(code: LlmedgeError.internal, message: "llmedge_generate_options_new failed")
        }
        defer { llmedge_generate_options_free(options) }
        // The C API reads 0 as "until the context is full", so nil maps to 0 and the values a
        // caller could mean by mistake (0, negative, too big) are refused here.
        if let maxTokens {
            guard maxTokens >= 1, maxTokens <= Int(UInt32.max) else {
                throw LlmedgeError(code: LlmedgeError.invalidArgument, message: "maxTokens must be at least 1, got \(maxTokens)")
            }
            try check(llmedge_generate_options_set_max_tokens(options, UInt32(maxTokens)))
        } else {
            try check(llmedge_generate_options_set_max_tokens(options, 0))
        }
        try check(llmedge_generate_options_set_temperature(options, temperature))
        try check(llmedge_generate_options_set_top_k(options, topK))
        try check(llmedge_generate_options_set_top_p(options, topP))
        try check(llmedge_generate_options_set_min_p(options, minP))
        try check(llmedge_generate_options_set_repeat_penalty(options, repeatPenalty))
        try check(llmedge_generate_options_set_frequency_penalty(options, frequencyPenalty))
        try check(llmedge_generate_options_set_presence_penalty(options, presencePenalty))
        try check(llmedge_generate_options_set_penalty_last_n(options, penaltyLastN))
        if let seed { try check(llmedge_generate_options_set_seed(options, seed)) }
        try check(llmedge_generate_options_set_greedy(options, greedy))
        try check(llmedge_generate_options_set_ignore_eos(options, ignoreEos))
        try check(llmedge_generate_options_set_truncation(options, truncation.rawValue))
        for s in stop {
            try s.withUTF8Pointer { try check(llmedge_generate_options_add_stop(options, $0, $1)) }
        }
        for (token, bias) in logitBias.sorted(by: { $0.key < $1.key }) {
            try check(llmedge_generate_options_add_logit_bias(options, token, bias))
        }
        return try body(options)
    }
}

/// One message of a conversation.
public struct ChatMessage: Equatable, Sendable {
    /// "system", "user", "assistant" or any role the template knows.
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }
}
