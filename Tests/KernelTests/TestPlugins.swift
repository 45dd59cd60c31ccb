import Kernel
import NIOCore

/// Small plugins for exercising the Kernel without the built-ins.
struct TagMiddleware: Middleware {
    static let name = "tag"
    static let configSchema = ConfigSchema([
        ConfigField("label", .string, required: true, "what to record"),
        ConfigField("count", .positiveInteger, default: 1, "how often"),
        ConfigField("stop", .boolean, default: false, "answer instead of calling next"),
    ])
    let label: String
    let stop: Bool
    init(config: PluginConfig, context: PluginContext) throws {
        label = config.string("label")!
        stop = config.bool("stop")!
        if label == "bad" { throw config.error("label", "must not be \"bad\"") }
    }
    func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        request.context[Trail.self] = (request.context[Trail.self] ?? []) + ["in:\(label)"]
        if stop { return .json(["stopped_by": JSON(label)]) }
        var response = try await next(request)
        response.headers.add(name: "x-trail", value: label)
        request.context[Trail.self] = (request.context[Trail.self] ?? []) + ["out:\(label)"]
        return response
    }
}

enum Trail: RequestStorageKey { typealias Value = [String] }

struct AnswerMiddleware: Middleware {
    static let name = "answer"
    static let isTerminal = true
    static let configSchema = ConfigSchema.empty
    init(config: PluginConfig, context: PluginContext) throws {}
    func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        request.context[Trail.self] = (request.context[Trail.self] ?? []) + ["answer"]
        return .json(["model": JSON(request.model)])
    }
}

struct NullProvider: Provider {
    static let name = "null-provider"
    static let configSchema = ConfigSchema([ConfigField("api_key", .secret, required: true, "the key")])
    init(config: PluginConfig, context: PluginContext) throws {}
    func send(_ call: ProviderCall) async throws -> GatewayResponse { .json([:]) }
}

func testRegistry() -> PluginRegistry {
    var registry = PluginRegistry()
    registry.register([TagMiddleware.self, AnswerMiddleware.self, NullProvider.self])
    return registry
}
