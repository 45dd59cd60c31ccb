import CHiredis
import Foundation
import NIOConcurrencyHelpers
import NIOPosix

/// A small Redis client: hiredis speaks the protocol, blocking calls run on a dedicated thread
/// pool (never an event loop), connections are pooled and re-made after any failure, and every
/// call is bounded by a timeout so that a dead Redis answers with an error, not a hang.
final class RedisClient: Sendable {
    let endpoint: RedisEndpoint
    private let pool: NIOThreadPool
    private let idle = NIOLockedValueBox<[RedisConnection]>([])
    private let timeout: Duration
    /// Script digests by source, once loaded.
    private let scripts = NIOLockedValueBox<[String: String]>([:])

    init(_ endpoint: RedisEndpoint, threads: Int = 4, timeout: Duration = .milliseconds(500)) {
        self.endpoint = endpoint
        self.timeout = timeout
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    /// Runs one command (`["EVALSHA", sha, "2", …]`) and returns its reply.
    func command(_ arguments: [String]) async throws -> RedisReply {
        try await pool.runIfActive { [self] in
            let connection = try idle.withLockedValue { $0.popLast() } ?? RedisConnection(endpoint, timeout: timeout)
            do {
                let reply = try connection.command(arguments)
                idle.withLockedValue { $0.append(connection) }
                return reply
            } catch let error as RedisError where error.isReplyError {
                idle.withLockedValue { $0.append(connection) }  // the connection is fine; the command was refused
                throw error
            }
        }
    }

    /// Runs a Lua script by its digest, loading it on first use (and again after a Redis restart).
    func evaluate(_ script: String, keys: [String], arguments: [String]) async throws -> RedisReply {
        let tail = [String(keys.count)] + keys + arguments
        var sha = scripts.withLockedValue { $0[script] }
        if sha == nil { sha = try await load(script) }
        do {
            return try await command(["EVALSHA", sha!] + tail)
        } catch let error as RedisError where error.message.hasPrefix("NOSCRIPT") {
            return try await command(["EVALSHA", try await load(script)] + tail)
        }
    }

    private func load(_ script: String) async throws -> String {
        guard let sha = try await command(["SCRIPT", "LOAD", script]).string else { throw RedisError(message: "SCRIPT LOAD gave no digest") }
        scripts.withLockedValue { $0[script] = sha }
        return sha
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
        idle.withLockedValue { $0.removeAll() }
    }
}

/// `redis://[:password@]host[:port][/db]`.
struct RedisEndpoint: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var password: String?
    var database: Int

    init?(url: String) {
        guard let components = URLComponents(string: url), components.scheme == "redis", let host = components.host, !host.isEmpty else {
            return nil
        }
        self.host = host
        port = components.port ?? 6379
        password = components.password ?? (components.user.flatMap { components.password == nil && !$0.isEmpty ? $0 : nil })
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard let database = path.isEmpty ? 0 : Int(path) else { return nil }
        self.database = database
    }

    /// Never shows the password.
    var description: String { "redis://\(host):\(port)/\(database)" }
}

/// A Redis answer.
enum RedisReply: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case array([RedisReply])
    case null

    var string: String? {
        switch self {
        case .string(let string): string
        case .integer(let int): String(int)
        default: nil
        }
    }
}

struct RedisError: Error, CustomStringConvertible {
    var message: String
    /// Redis refused the command (the connection itself is fine).
    var isReplyError = false
    var description: String { "redis: \(message)" }
}

/// One hiredis connection; used by one thread at a time (it is checked out of the pool).
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>

    init(_ endpoint: RedisEndpoint, timeout: Duration) throws {
        let limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        guard let context = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), limit) else {
            throw RedisError(message: "cannot allocate a connection")
        }
        guard context.pointee.err == 0 else {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(message: "cannot connect to \(endpoint): \(message)")
        }
        self.context = context
        redisSetTimeout(context, limit)
        if let password = endpoint.password { _ = try command(["AUTH", password]) }
        if endpoint.database != 0 { _ = try command(["SELECT", String(endpoint.database)]) }
    }

    deinit { redisFree(context) }

    func command(_ arguments: [String]) throws -> RedisReply {
        // Binary-safe (lengths are passed); hiredis copies the bytes before returning.
        let buffers = arguments.map { argument in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(argument.utf8.count, 1), alignment: 1)
            buffer.copyBytes(from: argument.utf8)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = buffers.map { UnsafePointer($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        let lengths = arguments.map { $0.utf8.count }
        let raw = lengths.withUnsafeBufferPointer { lengths in
            redisCommandArgv(context, Int32(arguments.count), &pointers, lengths.baseAddress)
        }
        guard let raw else { throw RedisError(message: Self.errorText(context)) }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        if reply.pointee.type == REDIS_REPLY_ERROR {
            throw RedisError(message: Self.text(reply), isReplyError: true)
        }
        return Self.convert(reply)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS:
            return .string(text(reply))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(reply.pointee.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<reply.pointee.elements).compactMap { reply.pointee.element[$0].map(convert) })
        default:
            return .null
        }
    }

    private static func text(_ reply: UnsafeMutablePointer<redisReply>) -> String {
        guard let chars = reply.pointee.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: chars, count: reply.pointee.len), as: UTF8.self)
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
