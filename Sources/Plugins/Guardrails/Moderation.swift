import Kernel
import NIOCore

/// Asks an OpenAI-compatible moderation model (`POST {base}/moderations`) about each request,
/// each whole answer, or both, and blocks or logs what it flags. The model is reached through a
/// provider of the manifest, so its URL, key and connection settings are the provider's own and
/// never repeated here; a provider that does not speak moderations is refused at load.
public struct Moderation: Middleware {
    public static let name = "moderation"
    public static let summary = "asks a moderation model (OpenAI's /moderations) about prompts and answers; blocks or logs what it flags"

    public struct Settings: PluginSettings {
        @Setting("provider", required: true, "the provider (a key of providers) that serves the moderation model") public var provider = ""
        @Setting("model", "the moderation model the provider knows") public var model = "omni-moderation-latest"
        @Setting("stages", .array(.choice(["request", "response"])), "what to ask about: the request's text, answers (a stream after its end, log only), or both")
        public var stages = ["request"]
        @Setting("thresholds", "category to the score (0 to 1) at which it counts, e.g. {\"violence\": 0.5}; absent: the model's own flags")
        public var thresholds: AnyJSON?
        @Setting("default_threshold", .number(min: 0, max: 1), "the score at which a category without a threshold of its own counts")
        public var defaultThreshold: Double?
        @Setting("action", .choice(["block", "log"]), "what to do with flagged text: refuse it (400) or only count it") public var action = "block"
        @Setting("timeout_s", .number(min: 0.001), "longest wait for the moderation model") public var timeout = 2.0
        @Setting("on_error", .choice(["allow", "deny"]), "when the model fails or times out: let the request through, or refuse it (503)")
        public var onError = "deny"
        public init() {}
    }

    struct Policy: Sendable {
        var thresholds: [String: Double]
        var defaultThreshold: Double?
        var blocks: Bool

        /// The categories a result counts, sorted.
        func flagged(_ result: JSON) -> [String] {
            var categories: Set<String> = []
            let scores = result["category_scores"]?.members ?? []
            if thresholds.isEmpty && defaultThreshold == nil {
                for (category, flagged) in result["categories"]?.members ?? [] where flagged.bool == true { categories.insert(category) }
            } else {
                for (category, score) in scores {
                    guard let value = score.double ?? score.int.map(Double.init),
                          let threshold = thresholds[category] ?? defaultThreshold else { continue }
                    if value >= threshold { categories.insert(category) }
                }
            }
            return categories.sorted()
        }
    }

    let provider: any Provider
    let model: String
    let policy: Policy
    let checksRequests: Bool
    let checksAnswers: Bool
    let timeout: Duration
    let failOpen: Bool
    let signals: PluginSignals

    public init(settings: Settings, context: PluginContext) throws {
        guard let provider = context.providers[settings.provider] else {
            let known = context.providers.keys.sorted().joined(separator: ", ")
            throw context.configError("provider", "no provider \"\(settings.provider)\" in this manifest (known: \(known))")
        }
        guard provider.nativeOperations(for: settings.model).contains(.moderations) else {
            throw context.configError("provider", "the provider \"\(settings.provider)\" does not serve /moderations (openai and openai-compatible do)")
        }
        self.provider = provider
        model = settings.model
        do {
            policy = Policy(thresholds: try Self.thresholds(settings.thresholds?.value), defaultThreshold: settings.defaultThreshold,
                            blocks: settings.action == "block")
        } catch {
            throw context.configError(error.path, error.message)
        }
        try CallerGuardrailSettings(of: Self.name, in: context.manifest).check { own throws(GuardrailConfigError) in
            if let problem = CallerGuardrailSettings.unknownMember(in: own, known: ["action", "thresholds", "default_threshold"]) { throw problem }
            if let action = own["action"], action.string != "block", action.string != "log" {
                throw GuardrailConfigError(path: "action", message: "expected block or log")
            }
            _ = try Self.thresholds(own["thresholds"])
            if let threshold = own["default_threshold"], !(threshold.double.map { (0...1).contains($0) } ?? false) {
                throw GuardrailConfigError(path: "default_threshold", message: "expected a number from 0 to 1")
            }
        }
        checksRequests = settings.stages.contains("request")
        checksAnswers = settings.stages.contains("response")
        timeout = .seconds(settings.timeout)
        failOpen = settings.onError == "allow"
        signals = context.signals
    }

    /// Category to threshold, from `{"violence": 0.5, …}`.
    static func thresholds(_ json: JSON?) throws(GuardrailConfigError) -> [String: Double] {
        guard let json, !json.isNull else { return [:] }
        guard json.isObject else { throw GuardrailConfigError(path: "thresholds", message: "expected an object of category to a number from 0 to 1") }
        var table: [String: Double] = [:]
        for (category, value) in json.members {
            guard let number = value.double ?? value.int.map(Double.init), (0...1).contains(number) else {
                throw GuardrailConfigError(path: "thresholds.\(category)", message: "expected a number from 0 to 1")
            }
            table[category] = number
        }
        return table
    }

    /// The caller's policy: the manifest's, with a key's `action`, `thresholds` and `default_threshold`.
    func policy(for request: GatewayRequest) -> Policy? {
        guard let overrides = request.context.identity?.guardrails else { return policy }
        if overrides.isDisabled(Self.name) { return nil }
        guard let own = overrides[Self.name] else { return policy }
        var policy = policy
        if let action = own["action"]?.string { policy.blocks = action == "block" }
        // Checked when the plugin was built (CallerGuardrailSettings).
        if let thresholds = own["thresholds"], let parsed = try? Self.thresholds(thresholds) { policy.thresholds = parsed }
        if let threshold = own["default_threshold"]?.double { policy.defaultThreshold = threshold }
        return policy
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard [.chatCompletions, .messages, .responses, .embeddings].contains(request.operation),
              let policy = policy(for: request) else { return try await next(request) }
        // Each check waits in a function of its own: this frame lives as long as the request waits
        // for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        if checksRequests { try await moderateRequest(request, policy: policy) }
        let response = try await next(request)
        guard checksAnswers, (200..<300).contains(response.status.code) else { return response }
        if case .whole(let bytes) = response.body {
            try await moderateAnswer(bytes, policy: policy, request: request)
            return response
        }
        return observed(response, policy: policy, request: request)
    }

    @inline(never)
    private func moderateRequest(_ request: GatewayRequest, policy: Policy) async throws {
        try await moderate(RequestText.collect(request.body.json, operation: request.operation), stage: .request, policy: policy, request: request)
    }

    @inline(never)
    private func moderateAnswer(_ bytes: ByteBuffer, policy: Policy, request: GatewayRequest) async throws {
        guard let answer = try? JSON.parse(bytes) else { return }
        try await moderate(AnswerText.collect(answer), stage: .response, policy: policy, request: request)
    }

    /// A stream's text, moderated once it has ended.
    @inline(never)
    private func observed(_ response: GatewayResponse, policy: Policy, request: GatewayRequest) -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole:
            break
        case .events(let events):
            // A stream is not held back: once it has ended its text is moderated and only logged.
            let text = StreamedAnswerText(limit: 256 * 1024)
            let logOnly = Policy(thresholds: policy.thresholds, defaultThreshold: policy.defaultThreshold, blocks: false)
            let request = request.withoutBodyOrHeaders
            response.body = .events(events.observing({ text.add($0) }, finished: { [self] error in
                guard error == nil else { return }
                Task { try? await self.moderate([text.value], stage: .response, policy: logOnly, request: request) }
            }))
        }
        return response
    }

    @inline(never)
    private func moderate(_ texts: [String], stage: GuardrailStage, policy: Policy, request: GatewayRequest) async throws {
        let texts = texts.filter { !$0.isEmpty }
        guard !texts.isEmpty else { return }
        let results: [JSON]
        do {
            results = try await ask(texts, request: request)
        } catch {
            if error is CancellationError || Task.isCancelled { throw error }
            signals.send(GuardrailTriggered(guardrail: Self.name, rule: "unavailable", action: failOpen ? "allow" : "block", stage: stage, count: 1))
            request.context.logger.warning("moderation failed", metadata: ["error": .string(GatewayError(error).message),
                                                                          "on_error": .string(failOpen ? "allow" : "deny")])
            if failOpen { return }
            throw GatewayError(.serviceUnavailable, type: "server_error", "the request could not be checked by the moderation model; retry shortly",
                               code: "moderation_unavailable")
        }
        let flagged = Set(results.flatMap(policy.flagged)).sorted()
        guard !flagged.isEmpty else { return }
        let action = policy.blocks ? "block" : "log"
        for category in flagged {
            signals.send(GuardrailTriggered(guardrail: Self.name, rule: Self.boundedCategory(category), action: action, stage: stage, count: 1))
        }
        request.context.logger.info("moderation flagged", metadata: ["stage": .string(stage.rawValue), "action": .string(action),
                                                                    "categories": .string(flagged.map(Self.boundedCategory).joined(separator: ","))])
        guard policy.blocks else { return }
        let what = stage == .request ? "The request was" : "The answer was"
        throw GatewayError.guardrail("\(what) flagged by moderation (\(flagged.map(Self.boundedCategory).joined(separator: ", "))).", code: "content_flagged")
    }

    /// A category name as the model sent it, if it looks like one (letters, `/`, `-`, `_`): it
    /// becomes a metric label and a log field, so nothing else from the model is let through.
    static func boundedCategory(_ category: String) -> String {
        category.count <= 40 && category.allSatisfy({ $0.isASCII && ($0.isLetter || "/-_".contains($0)) }) ? category : "other"
    }

    /// One call to the moderation model through its provider; the `results`, one per text.
    private func ask(_ texts: [String], request: GatewayRequest) async throws -> [JSON] {
        let context = RequestContext(requestID: request.context.requestID, logger: request.context.logger, allocator: request.context.allocator)
        let body = RequestBody(json: ["model": JSON(model), "input": JSON(array: texts.map { JSON($0) })])
        let question = GatewayRequest(operation: .moderations, dialect: .openAI, method: .POST, uri: "/v1/moderations", headers: [:],
                                      body: body, model: model, stream: false, context: context)
        let answer = try await provider.answer(ProviderCall(request: question, upstreamModel: model, timeout: timeout))
        guard case .whole(let bytes) = answer.body, let json = try? JSON.parse(bytes), let results = json["results"], results.isArray,
              results.count == texts.count else {
            throw GatewayError(.badGateway, type: "upstream_error", "the moderation model's answer has no results", code: "upstream_invalid")
        }
        return results.elements
    }
}
