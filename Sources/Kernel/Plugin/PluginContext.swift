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
    /// What plugins of this manifest tell each other outside requests.
    public let signals: PluginSignals
    /// Where work that outlives a request or a call goes (a store write after the answer, a
    /// polling loop): child tasks of the gateway's run, never a `Task {}` of a plugin's own.
    public let background: BackgroundWork
    /// The manifest's state database, open and migrated; `nil` when the manifest names none.
    public let database: (any StateDatabase)?
    /// Where the plugin's config sits in the manifest, e.g. `pipeline[2].config`.
    public private(set) var configPath = ""

    public init(logger: Logger, upstream: UpstreamClient, background: BackgroundWork, manifest: Manifest, providers: [String: any Provider],
                environment: [String: String], allocator: ByteBufferAllocator = ByteBufferAllocator(), signals: PluginSignals = PluginSignals(),
                database: (any StateDatabase)? = nil) {
        self.signals = signals
        self.background = background
        self.database = database
        self.logger = logger
        self.upstream = upstream
        self.manifest = manifest
        self.providers = providers
        self.environment = environment
        self.allocator = allocator
    }

    /// This context for the plugin whose config sits at `path`.
    func configured(at path: String) -> PluginContext {
        var context = self
        context.configPath = path
        return context
    }

    /// The state database, for a plugin (or one of its settings, `key`) that cannot work without
    /// one; a config error naming that setting when the manifest names no database.
    public func requireDatabase(for key: String?, _ purpose: String) throws -> any StateDatabase {
        guard let database else {
            throw configError(key, "\(purpose) needs the state database, and the manifest names none; add at its top "
                              + "\"database\": {\"url\": \"sqlite:.sluice/sluice.db\"} (or postgres://… shared by replicas)")
        }
        return database
    }

    /// The reference the setting at `key` was read from (`{"file": …}`, say); `nil` when the
    /// manifest gave the value itself. A credential that rotates is re-read through it.
    public func secretReference(_ key: String) -> SecretReference? {
        manifest.secretReferences[configPath.isEmpty ? key : configPath + "." + key]
    }

    /// An error about the setting at `key` (a member name, or a path within the config such as
    /// `keys[2].name`), or about the config itself, for a plugin's own checks.
    public func configError(_ key: String?, _ message: String) -> ManifestError {
        guard let key else { return ManifestError(path: configPath, message) }
        return ManifestError(path: key.first == "[" || configPath.isEmpty ? configPath + key : configPath + "." + key, message)
    }
}
