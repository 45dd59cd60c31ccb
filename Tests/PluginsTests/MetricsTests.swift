import Foundation
import Kernel
import KernelTesting
import NIOHTTP1
import Testing

/// `metrics` (Sources/Plugins/Metrics) through an in-process gateway: known requests, then the
/// parsed `GET /metrics` page. Each test names its models and keys uniquely, so its series are
/// its own even while the registry is shared by the process.
@Suite struct MetricsTests {
    /// A page of the Prometheus text format, as samples.
    struct Page {
        struct Sample {
            var name: String
            var labels: [String: String]
            var value: Double
        }

        var samples: [Sample] = []

        init(_ text: String) {
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
                let series = line[..<space]
                guard let open = series.firstIndex(of: "{") else {
                    samples.append(Sample(name: String(series), labels: [:], value: value))
                    continue
                }
                var labels: [String: String] = [:]
                var rest = series[series.index(after: open)...].dropLast()  // without the braces
                while let equals = rest.firstIndex(of: "=") {
                    let name = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                    let afterQuote = rest.index(equals, offsetBy: 2)
                    guard let close = rest[afterQuote...].firstIndex(of: "\"") else { break }
                    labels[name] = String(rest[afterQuote..<close])
                    rest = rest[rest.index(after: close)...]
                }
                samples.append(Sample(name: String(series[..<open]), labels: labels, value: value))
            }
        }

        /// The sum of the samples named `name` whose labels include `labels` (nil: no such sample).
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            let matching = samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
            return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
        }
    }

    /// Unique names for one test's models and key.
    struct Names {
        let id = UUID().uuidString.prefix(8).lowercased()
        var model: String { "m-\(id)" }
        var fallbackModel: String { "f-\(id)" }
        var key: String { "k-\(id)" }
    }

    static func manifest(_ names: Names, metrics: String = "{}", server: String = "{}", extra: String = "") -> String {
        """
        {"server": \(server),
         "providers": {"p": {"plugin": "scripted", "config": {"reply": "one two three", "input_tokens": 5}},
                       "broken": {"plugin": "scripted", "config": {"fail_status": 502}}},
         "models": {"\(names.model)": {"targets": [{"provider": "p", "model": "up"}], "price": {"input_per_million": 2, "output_per_million": 4}},
                    "\(names.fallbackModel)": {"targets": [{"provider": "broken", "model": "up-broken"}], "fallbacks": ["\(names.model)"]}},
         "pipeline": [{"plugin": "metrics", "config": \(metrics)},
                      {"plugin": "api-key-auth", "config": {"keys": [{"name": "\(names.key)", "key": "key-\(names.id)", "models": ["\(names.model)", "\(names.fallbackModel)", "nope"]},
                                                                  {"name": "limited-\(names.id)", "key": "limited-\(names.id)", "models": []}]}},
                      {"plugin": "validation"}, \(extra)
                      {"plugin": "router", "config": {"retries": 0}}]}
        """
    }

    static func auth(_ names: Names) -> HTTPHeaders { ["authorization": "Bearer key-\(names.id)"] }

    static func page(_ gateway: TestGateway, path: String = "/metrics", headers: HTTPHeaders = [:]) async throws -> Page {
        let answer = try await gateway.send(.GET, path, headers: headers)
        #expect(answer.status == .ok)
        #expect(answer.headers.first(name: "content-type") == "text/plain; version=0.0.4; charset=utf-8")
        return Page(try #require(answer.bodyText))
    }

    @Test func countsRequestsAndTokens() async throws {
        let names = Names()
        try await withGateway(Self.manifest(names)) { gateway async throws in
            for stream in [false, false, true] {
                let answer = try await gateway.chat(model: names.model, "hi", stream: stream, headers: Self.auth(names))
                #expect(answer.text == "one two three")
            }
            let page = try await Self.page(gateway)
            let series = ["model": names.model, "provider": "p", "key_name": names.key]
            #expect(page.value("sluice_requests_total", series.merging(["status": "200", "front_door": "openai"]) { $1 }) == 3)
            #expect(page.value("sluice_tokens_total", series.merging(["direction": "input"]) { $1 }) == 15)
            #expect(page.value("sluice_tokens_total", series.merging(["direction": "output"]) { $1 }) == 9)
            #expect(page.value("sluice_tokens_total", series.merging(["direction": "cached_input"]) { $1 }) == nil)
            let usage = ["gen_ai_request_model": names.model, "gen_ai_provider_name": "p"]
            #expect(page.value("gen_ai_client_token_usage_count", usage.merging(["gen_ai_token_type": "output"]) { $1 }) == 3)
            #expect(page.value("gen_ai_client_token_usage_sum", usage.merging(["gen_ai_token_type": "output"]) { $1 }) == 9)
            #expect(page.value("gen_ai_client_token_usage_bucket", usage.merging(["gen_ai_token_type": "input", "le": "4.0"]) { $1 }) == 0)
            #expect(page.value("gen_ai_client_token_usage_bucket", usage.merging(["gen_ai_token_type": "input", "le": "16.0"]) { $1 }) == 3)
            #expect(page.value("gen_ai_server_request_duration_seconds_count", usage.merging(["status": "200"]) { $1 }) == 3)
            #expect(page.value("gen_ai_server_time_to_first_token_seconds_count", usage) == 1)
            // 3 × (5 input at $2 + 3 output at $4 per million).
            let cost = try #require(page.value("sluice_cost_usd_total", series))
            #expect(abs(cost - 3 * 22e-6) < 1e-12)
            #expect(page.value("sluice_retries_total", ["model": names.model]) == nil)
        }
    }

    @Test func countsRefusalsByReason() async throws {
        let names = Names()
        try await withGateway(Self.manifest(names, extra: #"{"plugin": "rate-limit", "config": {"by": "model", "requests_per_minute": 2}},"#)) { gateway async throws in
            // invalid (validation), forbidden (a model outside the key's list), rate limited.
            let invalid = chatBody(model: names.model, "hi", [("stop", ["a", "b", "c", "d", "e"])])
            #expect(try await gateway.send(.POST, "/v1/chat/completions", body: invalid, headers: Self.auth(names)).status == .badRequest)
            #expect(try await gateway.chat(model: names.model, "hi", headers: ["authorization": "Bearer limited-\(names.id)"]).status == .forbidden)
            for _ in 0..<2 { #expect(try await gateway.chat(model: names.model, "hi", headers: Self.auth(names)).status == .ok) }
            #expect(try await gateway.chat(model: names.model, "hi", headers: Self.auth(names)).status == .tooManyRequests)
            // A model nobody configured is counted as "unknown", and is no refusal.
            #expect(try await gateway.chat(model: "nope", "hi", headers: Self.auth(names)).status == .notFound)

            let page = try await Self.page(gateway)
            #expect(page.value("sluice_refused_requests_total", ["reason": "invalid", "key_name": names.key]) == 1)
            #expect(page.value("sluice_refused_requests_total", ["reason": "forbidden", "key_name": "limited-\(names.id)"]) == 1)
            #expect(page.value("sluice_refused_requests_total", ["reason": "rate_limited", "key_name": names.key]) == 1)
            #expect(page.value("sluice_requests_total", ["key_name": names.key, "model": names.model, "status": "400"]) == 1)
            #expect(page.value("sluice_requests_total", ["key_name": names.key, "model": names.model, "status": "429", "provider": "none"]) == 1)
            #expect(page.value("sluice_requests_total", ["key_name": names.key, "model": "unknown", "status": "404"]) == 1)
            #expect(page.value("sluice_requests_total", ["key_name": names.key]) == 5)
        }
    }

    @Test func countsRetriesAndFallbacks() async throws {
        let names = Names()
        try await withGateway(Self.manifest(names)) { gateway async throws in
            for _ in 0..<2 {
                let answer = try await gateway.chat(model: names.fallbackModel, "hi", headers: Self.auth(names))
                #expect(answer.status == .ok)
                #expect(answer.headers.first(name: "x-sluice-provider") == "p")
            }
            let page = try await Self.page(gateway)
            #expect(page.value("sluice_retries_total", ["model": names.fallbackModel]) == 2)
            #expect(page.value("sluice_fallbacks_total", ["model": names.fallbackModel]) == 2)
            #expect(page.value("sluice_requests_total", ["model": names.fallbackModel, "provider": "p", "status": "200"]) == 2)
            // The fallback's price, under the public model asked for.
            #expect(page.value("sluice_cost_usd_total", ["model": names.fallbackModel]).map { abs($0 - 2 * 22e-6) < 1e-12 } == true)
        }
    }

    @Test func thePageHasItsOwnPathAndAdminKeys() async throws {
        let names = Names()
        let server = #"{"admin_keys": [{"name": "ops", "key": "admin-\#(names.id)"}]}"#
        try await withGateway(Self.manifest(names, metrics: #"{"path": "/prom"}"#, server: server)) { gateway async throws in
            _ = try await gateway.chat(model: names.model, "hi", headers: Self.auth(names))
            #expect(try await gateway.send(.GET, "/metrics").status == .notFound)
            let refused = try await gateway.send(.GET, "/prom")
            #expect(refused.status == .unauthorized)
            #expect(refused.error?["code"]?.string == "missing_admin_key")
            #expect(try await gateway.send(.GET, "/prom", headers: Self.auth(names)).status == .unauthorized)
            let page = try await Self.page(gateway, path: "/prom", headers: ["authorization": "Bearer admin-\(names.id)"])
            #expect(page.value("sluice_requests_total", ["model": names.model]) == 1)
        }
        let errors = await manifestErrors(Self.manifest(names, metrics: #"{"path": "metrics"}"#))
        #expect(errors.map(\.path) == ["pipeline[0].config.path"])
    }
}
