import Crypto
import Kernel

/// What makes two requests the same for the cache: front door, operation, public model, the
/// caller's scope, and the body without fields that do not change the answer (`user`, `stream`,
/// `stream_options`, `metadata`), keys sorted.
enum CacheKey {
    static let volatileFields = ["user", "stream", "stream_options", "metadata"]

    static func make(_ request: GatewayRequest, scope: String, prefix: String) -> String {
        var body = request.body.json
        for field in volatileFields where body[field] != nil { body[field] = nil }
        var hasher = SHA256()
        hasher.update(data: Array("\(request.dialect.rawValue)\n\(request.operation.rawValue)\n\(request.model)\n\(scope)\n".utf8))
        hasher.update(data: body.encoded(sortedKeys: true))
        return prefix + Hex.encode(hasher.finalize())
    }
}
