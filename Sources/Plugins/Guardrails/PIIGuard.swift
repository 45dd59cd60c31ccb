import Kernel
import Logging
import NIOCore

/// Finds personal data and secrets in prompts and answers (streams included) and blocks,
/// redacts, redacts-and-restores or only counts them, per detector; a key may have its own
/// policy (`keys[].guardrails.pii` in `api-key-auth`). docs/GUARDRAILS.md describes it all.
public struct PIIGuard: Middleware {
    public static let name = "pii"
    public static let summary = "finds e-mail, phone, card, IBAN, SSN, IP and secrets in prompts and answers: block, redact, restore or log"

    public struct Actions: PluginSettings {
        @Setting("email", .choice(["block", "redact", "restore", "log", "off"]), "e-mail addresses") public var email = "redact"
        @Setting("phone", .choice(["block", "redact", "restore", "log", "off"]), "phone numbers: E.164 and common national formats") public var phone = "redact"
        @Setting("card", .choice(["block", "redact", "restore", "log", "off"]), "payment card numbers (Luhn-checked, known networks)") public var card = "redact"
        @Setting("iban", .choice(["block", "redact", "restore", "log", "off"]), "IBANs (country length and mod-97 checked)") public var iban = "redact"
        @Setting("ssn", .choice(["block", "redact", "restore", "log", "off"]), "US social security numbers (AAA-GG-SSSS)") public var ssn = "redact"
        @Setting("ip", .choice(["block", "redact", "restore", "log", "off"]), "IPv4 and IPv6 addresses") public var ip = "log"
        @Setting("secret", .choice(["block", "redact", "restore", "log", "off"]), "API keys and tokens of the major providers and clouds, JWTs, private-key blocks") public var secret = "block"
        public init() {}

        var json: JSON {
            ["email": JSON(email), "phone": JSON(phone), "card": JSON(card), "iban": JSON(iban), "ssn": JSON(ssn), "ip": JSON(ip), "secret": JSON(secret)]
        }
    }

    public struct Settings: PluginSettings {
        @Setting("detectors", "what to do with each detector's finds: block, redact, restore, log or off") public var detectors = Actions()
        @Setting("stages", .array(.choice(["request", "response"])), "where to look: the request's text, the answer (whole and streamed), or both")
        public var stages = ["request", "response"]
        @Setting("stream_window_bytes", .positiveInteger, "text each streamed slot keeps back so that a value split over chunks is seen whole")
        public var streamWindow = 64
        @Setting("stream_max_hold_bytes", .positiveInteger, "longest text a stream holds back for one value still arriving (a long token or key)")
        public var streamMaxHold = 4096
        public init() {}
    }

    let policy: PIIPolicy
    let checksRequests: Bool
    let checksAnswers: Bool
    let window: Int
    let maxHold: Int
    let signals: PluginSignals

    public init(settings: Settings, context: PluginContext) throws {
        do {
            policy = try PIIPolicy.parse(settings.detectors.json, base: PIIPolicy(actions: [:]), path: "detectors")
        } catch {
            throw context.configError(error.path, error.message)
        }
        let policy = policy
        try CallerGuardrailSettings(of: Self.name, in: context.manifest).check { own throws(GuardrailConfigError) in
            _ = try PIIPolicy.parse(own, base: policy, path: "")
        }
        checksRequests = settings.stages.contains("request")
        checksAnswers = settings.stages.contains("response")
        window = settings.streamWindow
        maxHold = settings.streamMaxHold
        signals = context.signals
    }

    /// The caller's policy: the manifest's, changed by `keys[].guardrails.pii`.
    func policy(for request: GatewayRequest) -> PIIPolicy? {
        guard let overrides = request.context.identity?.guardrails else { return policy }
        if overrides.isDisabled(Self.name) { return nil }
        guard let own = overrides[Self.name] else { return policy }
        do {
            return try PIIPolicy.parse(own, base: policy, path: "guardrails.pii")
        } catch {
            request.context.logger.warning("pii: this key's guardrails.pii is not valid; the manifest's policy applies",
                                           metadata: ["path": .string(error.path), "error": .string(error.message)])
            return policy
        }
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        let answersHaveText = [.chatCompletions, .messages, .responses].contains(request.operation)
        guard answersHaveText || request.operation == .embeddings || request.operation == .moderations,
              let policy = policy(for: request), !policy.actions.isEmpty else { return try await next(request) }
        // The request is masked, and the answer checked, in synchronous functions: this frame lives
        // as long as the request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        let engine = PIIEngine(policy: policy, state: PIIRequestState())
        let response = try await next(checksRequests ? masked(request, engine: engine) : request)
        guard answersHaveText, checksAnswers || policy.restores, (200..<300).contains(response.status.code) else { return response }
        return try answered(response, engine: engine, policy: policy, context: request.context)
    }

    /// The request with its finds acted on.
    @inline(never)
    private func masked(_ request: GatewayRequest, engine: PIIEngine) throws -> GatewayRequest {
        var request = request
        defer { report(engine.state, context: request.context) }
        try RequestText.rewrite(&request.body, operation: request.operation) { try engine.process($0, stage: .request) }
        return request
    }

    /// A whole answer checked (and its placeholders restored) now; a stream, event by event.
    @inline(never)
    private func answered(_ response: GatewayResponse, engine: PIIEngine, policy: PIIPolicy, context: RequestContext) throws -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole(let bytes):
            guard let answer = try? JSON.parse(bytes) else { return response }
            defer { report(engine.state, context: context) }
            if let rewritten = try AnswerText.rewrite(answer, { try answerText($0, engine: engine) }) {
                response.body = .whole(rewritten.encoded(using: context.allocator))
                response.headers.remove(name: "content-length")
            }
        case .events(let events):
            let window = window, maxHold = maxHold
            // Only restoring: the answer's own finds are left alone.
            let answerEngine = checksAnswers ? engine : PIIEngine(policy: PIIPolicy(actions: policy.actions.filter { $0.value == .restore }), state: engine.state)
            response.body = .events(events.translating { [self] in
                GuardedTextStream(PIIStreamFilter(engine: answerEngine, window: window, maxHold: maxHold) {
                    self.report(engine.state, context: context)
                })
            })
        }
        return response
    }

    /// An answer's text: its finds acted on when answers are checked, and placeholders restored.
    private func answerText(_ text: String, engine: PIIEngine) throws -> String? {
        if checksAnswers { return try engine.process(text, stage: .response) }
        let restoring = PIIEngine(policy: PIIPolicy(actions: engine.policy.actions.filter { $0.value == .restore }), state: engine.state)
        return try restoring.process(text, stage: .response)
    }

    /// One log line and the metrics for what was found since the last report, values left out.
    private func report(_ state: PIIRequestState, context: RequestContext) {
        let tallies = state.takeTallies()
        guard !tallies.isEmpty else { return }
        for (tally, count) in tallies {
            signals.send(GuardrailTriggered(guardrail: Self.name, rule: tally.detector.rawValue, action: tally.action.rawValue,
                                            stage: tally.stage, count: count))
        }
        let found = tallies.map { "\($0.tally.stage.rawValue):\($0.tally.detector.rawValue):\($0.tally.action.rawValue)=\($0.count)" }
        context.logger.info("pii found", metadata: ["found": .string(found.joined(separator: ","))])
    }
}
