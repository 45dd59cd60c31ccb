import Foundation
import Kernel
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Synchronization

/// A live status page for operators at `GET /status`, its figures at `GET /status.json`:
/// providers (probe and breaker), per public model the request and error rates, latency and
/// time-to-first-token quantiles, tokens and spend over 5, 15 and 60 minutes, open streams,
/// the top keys, the manifest loaded and the recent errors.
///
/// It counts requests itself, from the same per-request facts as `metrics` and at the same
/// moments (the end of an answer, or of a stream), so it works with or without `metrics` in the
/// pipeline; put it next to `metrics`, before auth, to count refused requests too.
public struct StatusPage: Middleware {
    public static let name = "status-page"
    public static let summary = "a live status page for operators at GET /status (its figures at /status.json)"

    public struct Settings: PluginSettings {
        @Setting("path", "where the page is served; its figures are at the same path + .json") public var path = "/status"
        @Setting("public", "serve the page to anyone, without a key (it names keys, models, spend and upstream errors)")
        public var isPublic = false
        @Setting("admin_keys", "keys that may read the page, besides server.admin_keys (Authorization: Bearer, or as the password of HTTP Basic)")
        public var adminKeys: [KeySettings] = []
        @Setting("refresh_s", .number(min: 1, max: 300), "how often the open page fetches fresh figures") public var refresh = 2.0
        public init() {}
    }

    let path: String
    let access: StatusPageAccess
    let refreshMilliseconds: Int
    let ring = StatusRing.shared
    let errors = RecentErrors.shared
    let board: ProviderBoard
    let loaded: ManifestLoad
    /// Model names clients may not invent: any other is counted as "unknown" (bounded memory).
    let knownModels: Set<String>
    let modelOrder: [String]

    public init(settings: Settings, context: PluginContext) throws {
        path = settings.path
        guard path.hasPrefix("/"), !path.hasSuffix("/") || path == "/" else {
            throw context.configError("path", "expected a path starting with / (and not ending with one)")
        }
        var keys = context.manifest.server.adminKeys.map(\.digest)
        for (index, key) in settings.adminKeys.enumerated() {
            do {
                keys.append(try key.named().digest)
            } catch {
                throw context.configError("admin_keys[\(index)]" + (error.field.map { ".\($0)" } ?? ""), error.message)
            }
        }
        guard settings.isPublic || !keys.isEmpty else {
            throw context.configError(nil, "the status page needs admin keys (server.admin_keys or admin_keys here), or \"public\": true to serve it to anyone")
        }
        access = StatusPageAccess(keys: keys, isPublic: settings.isPublic)
        refreshMilliseconds = Int(settings.refresh * 1000)
        knownModels = Set(context.manifest.models.map(\.name))
        modelOrder = context.manifest.models.map(\.name)
        loaded = ManifestLoad(file: context.manifest.file)
        let board = ProviderBoard(providers: context.manifest.providers.map(\.name), unavailable: context.manifest.unavailableProviders)
        self.board = board
        context.signals.listen(for: ProviderProbed.self) { board.probed($0) }
        context.signals.listen(for: CircuitChanged.self) { board.circuit(provider: $0.provider, model: $0.model, isOpen: $0.isOpen) }
    }

    public func start() async throws { loaded.count() }

    public var routes: [PluginRoute] {
        let page = ByteBuffer(string: StatusPageHTML.page(source: path + ".json", refreshMilliseconds: refreshMilliseconds))
        let headers: HTTPHeaders = [
            "content-type": "text/html; charset=utf-8", "content-security-policy": StatusPageHTML.contentSecurityPolicy,
            "cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
        ]
        return [
            // Access is checked here rather than by the Kernel's operator check: the page also
            // takes HTTP Basic (what a browser can send), its own keys, and `public`.
            PluginRoute(method: "GET", path: path, access: .public) { [access] request in
                try access.check(request.headers)
                return GatewayResponse(headers: headers, body: .whole(page))
            },
            PluginRoute(method: "GET", path: path + ".json", access: .public) { [self] request in
                try access.check(request.headers)
                var response = GatewayResponse.json(report(), allocator: request.context.allocator)
                response.headers.replaceOrAdd(name: "cache-control", value: "no-store")
                return response
            },
        ]
    }

    /// Everything `/status.json` answers, as of `now`.
    func report(now: Date = Date()) -> JSON {
        var report = StatusReport.figures(buckets: ring.buckets(endingAt: now.timeIntervalSince1970), models: modelOrder)
        report["generated_at"] = JSON(StatusReport.timestamp(now))
        report["generation"] = loaded.json
        report["providers"] = board.json
        report["open_streams"] = JSON(LiveRequests.openStreams.load(ordering: .relaxed))
        report["in_flight"] = JSON(LiveRequests.inFlight.load(ordering: .relaxed))
        report["recent_errors"] = errors.json
        return report
    }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation != .listModels, request.operation != .other else { return try await next(request) }
        // The work after the wait is in synchronous functions: this frame lives as long as the
        // request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
        LiveRequests.inFlight.add(1, ordering: .relaxed)
        let response: GatewayResponse
        do {
            response = try await next(request)
        } catch {
            failed(error, request)
            throw error
        }
        return finish(response, request)
    }

    @inline(never)
    private func failed(_ error: any Error, _ request: GatewayRequest) {
        LiveRequests.inFlight.subtract(1, ordering: .relaxed)
        record(request, status: GatewayError(error).status.code, error: error, firstEventAt: nil)
    }

    @inline(never)
    private func finish(_ response: GatewayResponse, _ request: GatewayRequest) -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole:
            LiveRequests.inFlight.subtract(1, ordering: .relaxed)
            record(request, status: response.status.code, error: nil, firstEventAt: nil)
        case .events(let events):
            LiveRequests.openStreams.add(1, ordering: .relaxed)
            let status = response.status.code, first = FirstEventClock(), request = request.withoutBodyOrHeaders
            response.body = .events(events.observing({ _ in first.mark() }, finished: { [self] error in
                LiveRequests.openStreams.subtract(1, ordering: .relaxed)
                LiveRequests.inFlight.subtract(1, ordering: .relaxed)
                record(request, status: status, error: error, firstEventAt: first.time ?? .now, isStream: true)
            }))
        }
        return response
    }

    private func record(_ request: GatewayRequest, status: UInt, error: (any Error)?, firstEventAt: ContinuousClock.Instant?,
                        isStream: Bool = false) {
        let context = request.context, facts = context.facts
        let model = knownModels.contains(request.model) ? request.model : "unknown"
        let provider = facts.provider ?? "none"
        let streamFailed = isStream && error != nil && !(error is CancellationError) && GatewayError(error!).status.code != 499
        var observation = RequestObservation(model: model, key: context.identity?.name ?? "none", failed: status >= 500 || streamFailed,
                                             seconds: (ContinuousClock.now - context.receivedAt).inSeconds,
                                             timeToFirstToken: firstEventAt.map { ($0 - context.receivedAt).inSeconds })
        if let usage = context.usage {
            observation.inputTokens = usage.inputTokens
            observation.outputTokens = usage.outputTokens
        }
        observation.spend = context.cost ?? 0
        ring.record(observation, at: Date().timeIntervalSince1970)
        if observation.failed {
            let message = error.map { GatewayError($0).message } ?? "HTTP \(status)"
            errors.record(status: streamFailed ? GatewayError(error!).status.code : status, model: model, provider: provider, message: message,
                          credentials: context.credentials)
        }
    }
}

/// Requests being answered and streams being sent now, over every generation.
enum LiveRequests {
    static let inFlight = Atomic<Int>(0)
    static let openStreams = Atomic<Int>(0)
}

/// Which manifest is loaded and since when: the page's answer to "did my reload take?".
final class ManifestLoad: Sendable {
    /// Manifests with a status page loaded by this process, the first being 1.
    private static let loads = Atomic<Int>(0)
    let file: String
    let loadedAt = Date()
    private let number = Atomic<Int>(0)

    init(file: String) { self.file = file }

    func count() { number.store(Self.loads.add(1, ordering: .relaxed).newValue, ordering: .relaxed) }

    var json: JSON {
        JSON(object: [("number", JSON(number.load(ordering: .relaxed))), ("file", JSON(URL(fileURLWithPath: file).lastPathComponent)),
                      ("loaded_at", JSON(StatusReport.timestamp(loadedAt)))])
    }
}
