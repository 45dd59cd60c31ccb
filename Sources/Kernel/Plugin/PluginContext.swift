import Logging
import NIOCore

/// What a plugin is given when it is built. Everything here is shared and immutable; per-request
/// state lives in `RequestContext`.
public struct PluginContext: Sendable {
    public let logger: Logger
    /// The Kernel's HTTP client for calls to providers and other services.
    public let upstream: UpstreamClient
    /// The manifest being loaded (models and server settings).
    public let manifest: Manifest
    /// The providers of this manifest, by name; built before the pipeline.
    public let providers: [String: any Provider]
    public let environment: [String: String]
    public let allocator: ByteBufferAllocator

    public init(logger: Logger, upstream: UpstreamClient, manifest: Manifest, providers: [String: any Provider],
                environment: [String: String], allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.logger = logger
        self.upstream = upstream
        self.manifest = manifest
        self.providers = providers
        self.environment = environment
        self.allocator = allocator
    }
}
