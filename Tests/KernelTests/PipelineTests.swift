import Logging
import NIOCore
import Testing
@testable import Kernel

@Suite struct PipelineTests {
    func generation(_ pipeline: String) async throws -> GatewayGeneration {
        let manifest = try ManifestReader(registry: testRegistry(), environment: [:]).read(Array("""
            {"pipeline": \(pipeline)}
            """.utf8), file: "m.json")
        return try await GatewayGeneration.build(manifest, upstream: UpstreamClient(), background: BackgroundWork(), registry: testRegistry(), environment: [:],
                                                 logger: Logger(label: "test"))
    }

    func request() -> GatewayRequest {
        GatewayRequest(operation: .chatCompletions, dialect: .openAI, method: .POST, uri: "/v1/chat/completions", headers: [:],
                       body: .empty, model: "m", stream: false, context: RequestContext(requestID: "r", logger: Logger(label: "test")))
    }

    @Test func runsTopToBottomAndUnwindsInReverse() async throws {
        let generation = try await generation(#"[{"plugin": "tag", "config": {"label": "a"}}, {"plugin": "tag", "config": {"label": "b"}}, {"plugin": "answer"}]"#)
        let request = request()
        let response = try await generation.pipeline.handle(request)
        #expect(request.context[Trail.self] == ["in:a", "in:b", "answer", "out:b", "out:a"])
        #expect(response.headers[canonicalForm: "x-trail"].map(String.init) == ["b", "a"])
    }

    @Test func aMiddlewareCanShortCircuit() async throws {
        let generation = try await generation(#"[{"plugin": "tag", "config": {"label": "a", "stop": true}}, {"plugin": "answer"}]"#)
        let request = request()
        let response = try await generation.pipeline.handle(request)
        #expect(request.context[Trail.self] == ["in:a"])
        guard case .whole(let body) = response.body else { Issue.record("expected a whole body"); return }
        #expect(String(buffer: body) == #"{"stopped_by":"a"}"#)
    }

    @Test func buildErrorsCarryFileAndPath() async {
        do {
            _ = try await generation(#"[{"plugin": "tag", "config": {"label": "bad"}}, {"plugin": "answer"}]"#)
            Issue.record("expected an error")
        } catch let error as ManifestErrors {
            #expect(error.errors.map(\.description) == ["m.json: pipeline[0].config.label: must not be \"bad\""])
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func rendersErrorsInEachDialect() {
        let error = GatewayError.invalidRequest("bad", param: "messages")
        #expect(error.body(for: .openAI).description == #"{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":null}}"#)
        #expect(error.body(for: .anthropic).description == #"{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"}}"#)
    }
}
