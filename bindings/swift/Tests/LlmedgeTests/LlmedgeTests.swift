import Foundation
import XCTest
@testable import Llmedge

/// Runs against a real model: $LLMEDGE_TEST_MODEL, else llmedge's default model.
///   cargo build --release -p llmedge-ffi
///   LD_LIBRARY_PATH=../../target/release swift test -Xlinker -L../../target/release
final class LlmedgeTests: XCTestCase {
    static let path: String = {
        if let p = ProcessInfo.processInfo.environment["LLMEDGE_TEST_MODEL"], !p.isEmpty { return p }
        return try! Model.defaultModelPath()
    }()

    static let model: Model = try! Model(path: path, options: ModelOptions(threads: 1))

    func session(_ contextSize: UInt32 = 512) throws -> Session {
        try Self.model.makeSession(options: SessionOptions(contextSize: contextSize))
    }

    func testInfoAndTokens() throws {
        let info = Self.model.info
        XCTAssertEqual(info.architecture, "llama")
        XCTAssertEqual(info.nVocab, 49152)
        let text = "Hello, wörld! 🙂"
        let tokens = try Self.model.tokenize(text, addSpecial: false, parseSpecial: false)
        XCTAssertGreaterThan(tokens.count, 3)
        XCTAssertEqual(try Self.model.detokenize(tokens), text)
        XCTAssertEqual(try Self.model.embed("hi").count, Int(info.nEmbd))
    }

    func testGreedyIsDeterministicAndStreamsTheSameText() async throws {
        let s = try session()
        let options = GenerateOptions.greedy(maxTokens: 24)
        let blocking = try s.generate("The capital of France is", options: options)
        XCTAssertFalse(blocking.text.isEmpty)
        var pieces: [String] = []
        let viaCallback = try s.generate("The capital of France is", options: options) { pieces.append($0); return true }
        XCTAssertEqual(viaCallback.tokens, blocking.tokens)
        XCTAssertEqual(pieces.joined(), blocking.text)
        var streamed = ""
        for try await piece in s.stream("The capital of France is", options: options) {
            streamed += piece
        }
        XCTAssertEqual(streamed, blocking.text)
        let awaited = try await s.generate("The capital of France is", options: options)
        XCTAssertEqual(awaited.tokens, blocking.tokens)
    }

    func testBreakingOutOfAStreamCancelsGeneration() async throws {
        let s = try session(2100)
        let options = GenerateOptions(maxTokens: 2000, greedy: true, ignoreEos: true)
        let reason = LockedBox<Completion?>(nil)
        var count = 0
        for try await _ in s.stream("Tell me about the sea.", options: options, onCompletion: { reason.set($0) }) {
            count += 1
            if count == 3 { break }
        }
        // Leaving the loop cancels the stream; the native call then returns promptly.
        for _ in 0..<600 where reason.get() == nil { try await Task.sleep(nanoseconds: 100_000_000) }
        XCTAssertEqual(reason.get()?.finishReason, .cancelled)
        XCTAssertLessThan(reason.get()?.tokens.count ?? .max, 1000)
    }

    func testCancelFromAnotherThread() throws {
        let s = try session(2100)
        let started = DispatchSemaphore(value: 0)
        let result = LockedBox<Completion?>(nil)
        let thread = Thread {
            let c = try? s.generate("Tell me about the sea.", options: GenerateOptions(maxTokens: 2000, greedy: true, ignoreEos: true)) { _ in
                started.signal()
                return true
            }
            result.set(c)
        }
        thread.start()
        XCTAssertEqual(started.wait(timeout: .now() + 60), .success)
        s.cancel()
        for _ in 0..<600 where result.get() == nil { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertEqual(result.get()?.finishReason, .cancelled)
    }

    func testErrorsCarryTheirCodes() throws {
        XCTAssertThrowsError(try Model(path: "/nonexistent/model.gguf")) {
            XCTAssertEqual(($0 as? LlmedgeError)?.code, LlmedgeError.modelNotFound)
        }
        let truncated = FileManager.default.temporaryDirectory.appendingPathComponent("llmedge-truncated.gguf")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.path)).prefix(1 << 20)
        try bytes.write(to: truncated)
        defer { try? FileManager.default.removeItem(at: truncated) }
        XCTAssertThrowsError(try Model(path: truncated.path)) {
            XCTAssertEqual(($0 as? LlmedgeError)?.code, LlmedgeError.invalidModel)
        }
        let s = try session(64)
        XCTAssertThrowsError(try s.generate("hi", options: GenerateOptions(maxTokens: -1))) {
            XCTAssertEqual(($0 as? LlmedgeError)?.code, LlmedgeError.invalidArgument)
        }
        XCTAssertThrowsError(try s.generate(String(repeating: "word ", count: 200), options: .greedy(maxTokens: 8))) {
            XCTAssertEqual(($0 as? LlmedgeError)?.code, LlmedgeError.contextOverflow)
        }
    }

    func testChat() throws {
        let s = try session()
        let c = try s.chat([.system("You are terse."), .user("Say hi.")], options: .greedy(maxTokens: 16))
        XCTAssertGreaterThan(c.usage.completionTokens, 0)
        XCTAssertEqual(c.usage.completionTokens, c.tokens.count)
    }
}

/// A value shared between threads in the tests.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}
