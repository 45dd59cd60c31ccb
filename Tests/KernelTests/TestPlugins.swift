import Kernel
import NIOCore

/// Small plugins for exercising the Kernel without the built-ins.
struct TagMiddleware: Middleware {
    static let name = "tag"
    struct Settings: PluginSettings {
        @Setting("label", required: true, "what to record") var label = ""
        @Setting("count", .positiveInteger, "how often") var count = 1
        @Setting("stop", "answer instead of calling next") var stop = false
    }
    let label: String
    let stop: Bool
    init(settings: Settings, context: PluginContext) throws {
        label = settings.label
        stop = settings.stop
        if label == "bad" { throw context.configError("label", "must not be \"bad\"") }
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
    init(settings: NoSettings, context: PluginContext) throws {}
    func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        request.context[Trail.self] = (request.context[Trail.self] ?? []) + ["answer"]
        return .json(["model": JSON(request.model)])
    }
}

struct NullProvider: Provider {
    static let name = "null-provider"
    struct Settings: PluginSettings {
        @Setting("api_key", .secret, required: true, "the key") var apiKey = ""
    }
    init(settings: Settings, context: PluginContext) throws {}
    func send(_ call: ProviderCall) async throws -> GatewayResponse { .json([:]) }
}

func testRegistry() -> PluginRegistry {
    var registry = PluginRegistry()
    registry.register([TagMiddleware.self, AnswerMiddleware.self, NullProvider.self, HangingProbeProvider.self, ShutdownRecorder.self])
    return registry
}
