/// One bucket a request spends from, and what it costs there.
struct Limit {
    enum Kind { case requests, tokens, tokensPerDay }

    let bucket: Bucket
    let cost: Double
    let kind: Kind

    init(_ bucket: Bucket, cost: Double, _ kind: Kind) {
        self.bucket = bucket
        self.cost = cost
        self.kind = kind
    }
}
