import Kernel
import NIOHTTP1

/// Adds headers to what goes to providers and to what goes back to clients, with values that
/// may name the caller, the request or the model: upstream attribution (`x-acme-team:
/// {key_name}`), a fixed routing or tenant header, or a support id on every answer.
///
///     { "plugin": "inject-headers", "config": {
///         "upstream": { "x-acme-team": "{key_name}", "x-acme-tenant": { "env": "ACME_TENANT" } },
///         "response": { "x-acme-request": "{request_id}" } } }
///
/// Upstream headers never replace the ones a provider sets itself (credentials, content type).
/// Response headers are added to refusals and failures too, so a client can quote them.
public struct HeaderInjection: Middleware {
    public static let name = "inject-headers"
    public static let summary = "adds headers to provider requests and to answers; values may use {key_name}, {request_id}, {model}"

    public struct Settings: PluginSettings {
        @Setting("upstream", "headers sent to the provider with every attempt, name to value") public var upstream = StringMap()
        @Setting("response", "headers added to every answer (errors too), name to value") public var response = StringMap()
        public init() {}
    }

    let upstream: [(name: String, value: HeaderTemplate)]
    let response: [(name: String, value: HeaderTemplate)]

    public init(settings: Settings, context: PluginContext) throws {
        func read(_ headers: StringMap, _ key: String) throws -> [(name: String, value: HeaderTemplate)] {
            try headers.map { name, value in
                guard HeaderTemplate.isValidName(name) else {
                    throw context.configError(key, "\"\(name)\" is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)")
                }
                do {
                    return (name.lowercased(), try HeaderTemplate(value))
                } catch let problem as HeaderTemplate.Problem {
                    throw context.configError(key, "header \"\(name)\": \(problem.message)")
                }
            }
        }
        upstream = try read(settings.upstream, "upstream")
        response = try read(settings.response, "response")
        if upstream.isEmpty && response.isEmpty {
            throw context.configError(nil, "give at least one header under \"upstream\" or \"response\"")
        }
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        var request = request
        for (name, value) in upstream { request.upstreamHeaders.replaceOrAdd(name: name, value: value.render(for: request)) }
        do {
            var answer = try await next(request)
            for (name, value) in response { answer.headers.replaceOrAdd(name: name, value: value.render(for: request)) }
            return answer
        } catch var error as GatewayError {
            for (name, value) in response { error.headers.replaceOrAdd(name: name, value: value.render(for: request)) }
            throw error
        }
    }
}

/// A header value with placeholders, parsed once: `team-{key_name}` is a literal and a field.
struct HeaderTemplate: Sendable {
    enum Part: Sendable, Equatable {
        case literal(String)
        /// The caller's key name (empty before auth, or without one).
        case keyName
        case requestID
        /// The public model asked for.
        case model
    }

    struct Problem: Error { var message: String }

    let parts: [Part]

    init(_ text: String) throws {
        guard !text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
            throw Problem(message: "a value must not contain line breaks")
        }
        var parts: [Part] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { parts.append(.literal(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else { throw Problem(message: "\"{\" without \"}\"") }
            switch rest[rest.index(after: open)..<close] {
            case "key_name": parts.append(.keyName)
            case "request_id": parts.append(.requestID)
            case "model": parts.append(.model)
            case let other: throw Problem(message: "unknown placeholder {\(other)}; known: {key_name}, {request_id}, {model}")
            }
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    func render(for request: GatewayRequest) -> String {
        if parts.count == 1, case .literal(let text) = parts[0] { return text }
        var value = ""
        for part in parts {
            switch part {
            case .literal(let text): value += text
            case .keyName: value += Self.printable(request.context.identity?.name ?? "")
            case .requestID: value += Self.printable(request.context.requestID)
            case .model: value += Self.printable(request.model)
            }
        }
        return value
    }

    /// The client chooses the model name and request id: control characters would let it
    /// write headers of its own, so they are left out.
    static func printable(_ text: String) -> String {
        text.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
            ? text : String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
    }

    /// An HTTP token (RFC 9110 §5.6.2).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
