import Foundation

/// A provider's probe answered (or failed): sent on the generation's `PluginSignals` after every
/// probe, so that a plugin can show provider health without probing the providers a second time.
public struct ProviderProbed: Sendable {
    public var provider: String
    public var isUp: Bool
    public var detail: String
    public var checkedAt: Date
    public var latencyMilliseconds: Double

    public init(provider: String, isUp: Bool, detail: String, checkedAt: Date, latencyMilliseconds: Double) {
        self.provider = provider
        self.isUp = isUp
        self.detail = detail
        self.checkedAt = checkedAt
        self.latencyMilliseconds = latencyMilliseconds
    }
}
