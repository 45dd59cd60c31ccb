/// One finished request as the status page counts it.
struct RequestObservation: Sendable {
    var model: String
    var key: String
    /// A 5xx answer, or a stream that failed after it started (a client leaving is no failure).
    var failed: Bool
    var seconds: Double
    /// Streams only: from arrival to the first event.
    var timeToFirstToken: Double?
    var inputTokens = 0
    var outputTokens = 0
    var spend = 0.0
}

/// What one public model did in one bucket.
struct ModelFigures: Sendable, Equatable {
    var requests = 0
    var errors = 0
    var inputTokens = 0
    var outputTokens = 0
    var spend = 0.0
    var latency = LatencyHistogram()
    var timeToFirstToken = LatencyHistogram()

    mutating func record(_ observation: RequestObservation) {
        requests += 1
        if observation.failed { errors += 1 }
        inputTokens += observation.inputTokens
        outputTokens += observation.outputTokens
        spend += observation.spend
        latency.record(observation.seconds)
        if let first = observation.timeToFirstToken { timeToFirstToken.record(first) }
    }

    mutating func add(_ other: ModelFigures) {
        requests += other.requests
        errors += other.errors
        inputTokens += other.inputTokens
        outputTokens += other.outputTokens
        spend += other.spend
        latency.add(other.latency)
        timeToFirstToken.add(other.timeToFirstToken)
    }
}

/// What one key spent in one bucket.
struct KeyFigures: Sendable, Equatable {
    var requests = 0
    var spend = 0.0
}

/// The requests that ended within one 10-second span, by public model and by key.
struct StatusBucket: Sendable {
    /// Seconds since 1970 divided by the bucket's length: which span this is.
    var number: Int
    var models: [String: ModelFigures] = [:]
    var keys: [String: KeyFigures] = [:]

    /// Keys beyond this many in one bucket are counted together as `other`: with `jwt-auth` a
    /// key name is a token's claim, which only its issuer bounds.
    static let maxKeys = 64
    static let otherKeys = "other"

    mutating func record(_ observation: RequestObservation) {
        models[observation.model, default: ModelFigures()].record(observation)
        let key = keys[observation.key] != nil || keys.count < Self.maxKeys ? observation.key : Self.otherKeys
        keys[key, default: KeyFigures()].requests += 1
        keys[key, default: KeyFigures()].spend += observation.spend
    }
}
