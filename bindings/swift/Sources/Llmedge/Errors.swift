import CLlmedge

/// Every llmedge failure. `code` is the stable status number shared by every llmedge surface
/// (C `llmedge_status`, Rust `ErrorCode`, Python and Java exceptions): 1 invalid argument,
/// 2 null argument, 10 model not found, 11 invalid model, 21 context overflow, 60 closed, ...
public struct LlmedgeError: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    /// The code's snake_case name ("model_not_found", ...).
    public var name: String { String(cString: llmedge_status_name(code)) }

    public var description: String { "llmedge error \(code) (\(name)): \(message)" }

    public static let invalidArgument: Int32 = 1
    public static let nullArgument: Int32 = 2
    public static let invalidUTF8: Int32 = 3
    public static let modelNotFound: Int32 = 10
    public static let invalidModel: Int32 = 11
    public static let unsupportedArchitecture: Int32 = 12
    public static let outOfMemory: Int32 = 13
    public static let modelLoad: Int32 = 14
    public static let adapter: Int32 = 15
    public static let modelIntegrity: Int32 = 16
    public static let contextCreate: Int32 = 20
    public static let contextOverflow: Int32 = 21
    public static let decode: Int32 = 22
    public static let tokenize: Int32 = 23
    public static let template: Int32 = 30
    public static let noChatTemplate: Int32 = 31
    public static let templateVariables: Int32 = 32
    public static let grammar: Int32 = 33
    public static let structuredOutput: Int32 = 34
    public static let safetyBlocked: Int32 = 40
    public static let policy: Int32 = 41
    public static let audit: Int32 = 42
    public static let io: Int32 = 50
    public static let checksumMismatch: Int32 = 51
    public static let fetch: Int32 = 52
    public static let closed: Int32 = 60
    /// The serving engine's queue is full, or all of a model's `max_sessions` are open: retry later.
    public static let busy: Int32 = 70
    /// The request ran past its deadline (queued or generating).
    public static let timeout: Int32 = 71
    /// A saved session state is corrupt or belongs to another model or adapter set.
    public static let state: Int32 = 72
    /// A server configuration file is invalid (the message names the file and line).
    public static let config: Int32 = 73
    /// A request is over a configured resource limit, such as `max_prompt_tokens`.
    public static let limit: Int32 = 74
    public static let `internal`: Int32 = 98
    public static let panic: Int32 = 99

    /// The error of the failed C call that returned `status`, with `llmedge_last_error()`'s text.
    static func last(_ status: llmedge_status) -> LlmedgeError {
        var length = 0
        var message = ""
        if let text = llmedge_last_error(&length) {
            message = String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self)
        }
        return LlmedgeError(code: Int32(truncatingIfNeeded: status.rawValue), message: message)
    }
}

/// Throw the last error unless `status` is `LLMEDGE_STATUS_OK`.
@inline(__always)
func check(_ status: llmedge_status) throws {
    if status != LLMEDGE_STATUS_OK {
        throw LlmedgeError.last(status)
    }
}

extension String {
    /// Calls `body` with this string's UTF-8 bytes and their count. The pointer is never NULL,
    /// also for "" (the C API takes pointer + length and rejects NULL).
    func withUTF8Pointer<R>(_ body: (UnsafePointer<CChar>, Int) throws -> R) rethrows -> R {
        let bytes = utf8CString // NUL-terminated, so never empty
        return try bytes.withUnsafeBufferPointer { buffer in
            try body(buffer.baseAddress!, buffer.count - 1)
        }
    }

    /// A string that llmedge allocated (`llmedge_string_free` is called on it).
    static func takingLlmedgeString(_ pointer: UnsafeMutablePointer<CChar>?, length: Int) -> String {
        guard let pointer else { return "" }
        defer { llmedge_string_free(pointer) }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }
}
