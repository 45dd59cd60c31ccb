import Kernel
import Plugins
import Logging
import NIOHTTP1

let sharedUpstream = UpstreamClient()

func testManifest(_ text: String = #"{"pipeline": [{"plugin": "router"}]}"#) throws -> Manifest {
    try ManifestReader(registry: Builtins.registry(), environment: [:]).read(Array(text.utf8), file: "test.json")
}

func testContext(manifest: Manifest? = nil, providers: [String: any Provider] = [:]) throws -> PluginContext {
    // Plugins built on their own here start no background work, so nothing runs this one.
    PluginContext(logger: Logger(label: "test"), upstream: sharedUpstream, background: BackgroundWork(), manifest: try manifest ?? testManifest(),
                  providers: providers, environment: [:])
}

func testRequest(model: String, headers: HTTPHeaders = [:], operation: APIOperation = .chatCompletions) -> GatewayRequest {
    GatewayRequest(operation: operation, dialect: .openAI, method: .POST, uri: "/v1/chat/completions", headers: headers,
                   body: .empty, model: model, stream: false, context: RequestContext(requestID: "test", logger: Logger(label: "test")))
}
