import Foundation
import Kernel

/// How much of a provider's answer the gateway will hold: a whole answer is buffered before it
/// is sent on, and a stream's event is assembled before it is parsed, so each is bounded; a
/// provider that sends more gets the client a 502 (or, mid-stream, an error event).
public struct AnswerLimits: PluginSettings {
    @Setting("max_response_bytes", .positiveInteger, "largest whole answer accepted from the provider; a larger one is a 502")
    public var maxResponseBytes = 67_108_864
    @Setting("max_event_bytes", .positiveInteger,
             "largest server-sent event accepted from the provider; a larger one ends the stream with an error event")
    public var maxEventBytes = 1_048_576

    public init() {}

    /// The stream of events in a streamed answer's body.
    func events(_ body: UpstreamBody) -> EventStream { EventStream(serverSentEventsOf: body, maxEventBytes: maxEventBytes) }
}

/// How every provider reaches its API: extra headers, timeouts, and the limits on answers.
public struct ProviderConnection: PluginSettings {
    @Setting("headers", "extra headers sent with every request (values may be secret references)") public var headers = StringMap()
    @Setting("timeout_s", .number(min: 0.001), "longest wait for a whole answer, or for the first byte of a stream")
    public var timeout = 600.0
    @Setting("connect_timeout_s", .number(min: 0.001), "longest wait to connect") public var connectTimeout = 10.0
    @Setting("transport", .choice(UpstreamTransport.allCases.map(\.rawValue)),
             "auto: http:// through SwiftNIO on the request's event loop, https:// through libcurl; nio or curl to force one")
    public var transport = UpstreamTransport.automatic.rawValue
    @Setting("ca_file", "a PEM bundle of the certificate authorities trusted for this provider's https:// URL instead of the system store")
    public var caFile: String?
    public var limits = AnswerLimits()

    public init() {}

    /// `base_url` without a trailing slash, once it is an http:// or https:// URL that the
    /// chosen transport can reach, and `ca_file`, if given, a file the gateway can read: a
    /// missing bundle is refused at load, not found by the first request's TLS handshake.
    func checkedBaseURL(_ url: String, context: PluginContext) throws -> String {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw context.configError("base_url", "expected an http:// or https:// URL, got \"\(url)\"")
        }
        if upstreamTransport == .nio, !url.hasPrefix("http://") {
            throw context.configError("transport", "\"nio\" speaks plain HTTP only; \(url) needs \"curl\" or \"auto\"")
        }
        if let caFile {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: caFile, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw context.configError("ca_file", "no such file: \(caFile)")
            }
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw context.configError("ca_file", "cannot read \(caFile)")
            }
        }
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    /// `transport`, which its schema has checked.
    var upstreamTransport: UpstreamTransport { UpstreamTransport(rawValue: transport) ?? .automatic }
}
