import Kernel
import NIOCore
import NIOPosix

/// Refuses requests (and answers) by deny lists of words and phrases, linear-time regular
/// expressions, a cap on the prompt's estimated tokens, and the tools a request may offer.
/// A key may switch it off or bring its own lists (`keys[].guardrails["content-filter"]`).
public struct ContentFilter: Middleware {
    public static let name = "content-filter"
    public static let summary = "refuses prompts (and answers) by deny lists, linear-time regexes, prompt size and tool names"

    public struct Settings: PluginSettings {
        @Setting("deny", "words and phrases refused wherever they appear whole (case-insensitive, on word boundaries)") public var deny: [String] = []
        @Setting("patterns", "regular expressions refused where they match (RE2-style subset, linear time; see docs/GUARDRAILS.md)")
        public var patterns: [String] = []
        @Setting("max_prompt_tokens", .positiveInteger, "refuse prompts estimated (characters / 4) above this many tokens") public var maxPromptTokens: Int?
        @Setting("allowed_tools", "the only tool names a request may offer (absent: any)") public var allowedTools: [String]?
        @Setting("blocked_tools", "tool names a request may not offer") public var blockedTools: [String] = []
        @Setting("stages", .array(.choice(["request", "response"])), "where deny lists and patterns apply: the request, the answer (whole and streamed), or both")
        public var stages = ["request"]
        @Setting("stream_window_bytes", .positiveInteger, "text each streamed slot keeps back so that a phrase split over chunks is seen whole")
        public var streamWindow = 64
        public init() {}
    }

    let rules: ContentRules
    let checksRequests: Bool
    let checksAnswers: Bool
    let window: Int
    let signals: PluginSignals

    public init(settings: Settings, context: PluginContext) throws {
        var patterns: [LinearRegex] = []
        for (index, pattern) in settings.patterns.enumerated() {
            do { patterns.append(try LinearRegex(pattern)) } catch {
                throw context.configError("patterns[\(index)]", "not a supported regular expression: \(error.description)")
            }
        }
        rules = ContentRules(deny: PhraseList(settings.deny), patterns: patterns, maxPromptTokens: settings.maxPromptTokens,
                             allowedTools: settings.allowedTools.map(Set.init), blockedTools: Set(settings.blockedTools))
        try CallerGuardrailSettings(of: Self.name, in: context.manifest).check { own throws(GuardrailConfigError) in
            let known: Set<String> = ["deny", "max_prompt_tokens", "allowed_tools", "blocked_tools"]
            if let problem = CallerGuardrailSettings.unknownMember(in: own, known: known) { throw problem }
            for key in ["deny", "blocked_tools"] {
                if let list = own[key], !(list.isArray && list.elements.allSatisfy { $0.string != nil }) {
                    throw GuardrailConfigError(path: key, message: "expected an array of strings")
                }
            }
            if let allowed = own["allowed_tools"], !allowed.isNull, !(allowed.isArray && allowed.elements.allSatisfy { $0.string != nil }) {
                throw GuardrailConfigError(path: "allowed_tools", message: "expected an array of strings, or null for every tool")
            }
            if let tokens = own["max_prompt_tokens"], !tokens.isNull, !(tokens.int.map { $0 >= 1 } ?? false) {
                throw GuardrailConfigError(path: "max_prompt_tokens", message: "expected an integer of at least 1, or null for no cap")
            }
        }
        checksRequests = settings.stages.contains("request")
        checksAnswers = settings.stages.contains("response")
        window = settings.streamWindow
        signals = context.signals
    }

    /// The caller's rules: the manifest's, with `deny`, `max_prompt_tokens`, `allowed_tools` and
    /// `blocked_tools` replaced by the key's own where it gives them.
    func rules(for request: GatewayRequest) -> ContentRules? {
        guard let overrides = request.context.identity?.guardrails else { return rules }
        if overrides.isDisabled(Self.name) { return nil }
        guard let own = overrides[Self.name] else { return rules }
        var rules = rules
        if let deny = own["deny"]?.elements.compactMap(\.string) { rules.deny = PhraseList(deny) }
        if let max = own["max_prompt_tokens"] { rules.maxPromptTokens = max.int }
        if let allowed = own["allowed_tools"] { rules.allowedTools = allowed.isArray ? Set(allowed.elements.compactMap(\.string)) : nil }
        if let blocked = own["blocked_tools"]?.elements.compactMap(\.string) { rules.blockedTools = Set(blocked) }
        return rules
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        let answersHaveText = [.chatCompletions, .messages, .responses].contains(request.operation)
        guard answersHaveText || request.operation == .embeddings || request.operation == .moderations,
              let rules = rules(for: request) else { return try await next(request) }
        // The request is checked, and the answer, in functions of their own: this frame lives as
        // long as the request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        if checksRequests { try await check(request, rules: rules) }
        let response = try await next(request)
        guard checksAnswers, answersHaveText, rules.checksText, (200..<300).contains(response.status.code) else { return response }
        return try checked(response, rules: rules)
    }

    /// A whole answer checked now; a stream, event by event.
    @inline(never)
    private func checked(_ response: GatewayResponse, rules: ContentRules) throws -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole(let bytes):
            guard let answer = try? JSON.parse(bytes) else { return response }
            for text in AnswerText.collect(answer) {
                if let violation = rules.violation(in: text, stage: .response) {
                    count(violation.rule, action: "block", stage: .response)
                    throw violation.error
                }
            }
        case .events(let events):
            let window = window
            response.body = .events(events.translating { [self] in
                GuardedTextStream(ContentStreamFilter(rules: rules, window: window) { self.count($0, action: "block", stage: .response) })
            })
        }
        return response
    }

    /// Requests with more text than this are checked on NIO's thread pool: deny lists and patterns
    /// take time in proportion to the text, and the event loop is shared with many connections.
    static let offLoopTextBytes = 64 * 1024

    @inline(never)
    private func check(_ request: GatewayRequest, rules: ContentRules) async throws {
        let tools = ContentRules.toolNames(request.body.json)
        for tool in tools where rules.blockedTools.contains(tool) || !(rules.allowedTools?.contains(tool) ?? true) {
            count("tool", action: "block", stage: .request)
            throw GatewayError.guardrail("The tool `\(tool)` is not allowed on this gateway (content-filter).", code: "tool_not_allowed")
        }
        guard rules.checksText || rules.maxPromptTokens != nil else { return }
        let texts = RequestText.collect(request.body.json, operation: request.operation)
        if let limit = rules.maxPromptTokens {
            let characters = texts.reduce(0) { $0 + $1.count }
            let estimate = (characters + 3) / 4
            if estimate > limit {
                count("max_prompt_tokens", action: "block", stage: .request)
                throw GatewayError.guardrail("The prompt is about \(estimate) tokens; this gateway accepts at most \(limit) (content-filter max_prompt_tokens).",
                                             code: "prompt_too_long")
            }
        }
        guard rules.checksText else { return }
        let firstViolation = { @Sendable in texts.lazy.compactMap { rules.violation(in: $0, stage: .request) }.first }
        let violation = texts.reduce(0, { $0 + $1.utf8.count }) > Self.offLoopTextBytes
            ? try await NIOThreadPool.singleton.runIfActive(firstViolation) : firstViolation()
        if let violation {
            count(violation.rule, action: "block", stage: .request)
            throw violation.error
        }
    }

    private func count(_ rule: String, action: String, stage: GuardrailStage) {
        signals.send(GuardrailTriggered(guardrail: Self.name, rule: rule, action: action, stage: stage, count: 1))
    }
}
