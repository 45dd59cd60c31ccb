import Kernel

/// Writes one row per finished request to the state database's spend ledger: when, which
/// request, key and team, public model, provider and upstream model, tokens, cost and status.
/// Rows are batched off the request path (`LedgerWriter`); the drain writes the last batch.
/// Only authenticated requests are recorded: an unknown caller costs nothing and must not be
/// able to fill the database. Put it right after the authenticator, above `budget`, so that it
/// sees every answer, refusals included.
public struct SpendLedgerPlugin: Middleware {
    public static let name = "spend-ledger"
    public static let summary = "one row per finished request (tokens, cost, status) in the state database, written in batches"

    public struct Settings: PluginSettings {
        @Setting("batch_size", .positiveInteger, "rows written per transaction") public var batchSize = 500
        @Setting("flush_interval_s", .number(min: 0.01), "longest a row waits before it is written") public var flushIntervalSeconds = 1.0
        @Setting("max_buffered_rows", .positiveInteger,
                 "rows kept while the database fails; beyond this the oldest are dropped (counted and logged)")
        public var maxBufferedRows = 100_000
        public init() {}
    }

    let writer: LedgerWriter
    let signals: PluginSignals

    public init(settings: Settings, context: PluginContext) throws {
        let database = try context.requireDatabase(for: nil, "spend-ledger")
        writer = LedgerWriter(ledger: SpendLedger(database: database), batchSize: settings.batchSize, capacity: settings.maxBufferedRows,
                              interval: .milliseconds(Int64(settings.flushIntervalSeconds * 1000)), background: context.background,
                              logger: context.logger, onWriteFailed: { [signals = context.signals] in signals.send(LedgerWriteFailed(batches: 1)) })
        signals = context.signals
    }

    public func start() async throws {
        signals.send(LedgerWriteFailed(batches: 0))
        writer.start()
    }
    public func shutdown() async { await writer.close() }

    public func handle(_ request: GatewayRequest, next: Next) async throws -> GatewayResponse {
        guard request.operation != .listModels, request.operation != .other else { return try await next(request) }
        // The work after the wait is in synchronous functions: this frame lives as long as the
        // request waits for its provider (docs/ARCHITECTURE.md, "Threads and tasks": async frames).
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
        record(request, status: GatewayError(error).status.code)
    }

    @inline(never)
    private func finish(_ response: GatewayResponse, _ request: GatewayRequest) -> GatewayResponse {
        var response = response
        switch response.body {
        case .whole:
            record(request, status: response.status.code)
        case .events(let events):
            let request = request.withoutBodyOrHeaders, status = response.status.code
            response.body = .events(events.observing({ _ in }, finished: { error in
                record(request, status: error == nil ? status : (error is CancellationError ? 499 : GatewayError(error!).status.code))
            }))
        }
        return response
    }

    private func record(_ request: GatewayRequest, status: UInt) {
        let context = request.context
        guard let identity = context.identity else { return }
        let facts = context.facts
        let usage = context.usage
        writer.append(SpendLedger.Record(
            atMs: WallClock.milliseconds(), requestID: context.requestID, keyName: identity.name, team: identity.team, model: request.model,
            provider: facts.provider, upstreamModel: facts.upstreamModel, inputTokens: usage?.inputTokens ?? 0,
            outputTokens: usage?.outputTokens ?? 0, cachedInputTokens: usage?.cachedInputTokens ?? 0,
            costNanoUSD: SpendLedger.nanoUSD(context.cost ?? 0), status: Int(status)))
    }
}
