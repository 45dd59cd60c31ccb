import AcmePlugins
import Kernel
import Plugins
import SluiceCLI

/// Sluice with Acme's plugins: `acme-gateway serve`, `check`, `plugins`, `schema`, `reload` and
/// `healthcheck` behave as `sluice`'s do, and all of them know `inject-headers`, `pii-mask` and `acme-model-server`.
@main
struct AcmeGateway: GatewayProgram {
    static let commandName = "acme-gateway"
    static let abstract = "Acme's AI gateway: Sluice with header injection and e-mail masking."

    static func registry() -> PluginRegistry {
        var registry = Builtins.registry()
        registry.register([HeaderInjection.self, PIIMask.self, AcmeModelServer.self])
        return registry
    }
}
