import Kernel
import Plugins
import SluiceCLI

@main
struct Sluice: GatewayProgram {
    static let commandName = "sluice"
    static let abstract = "An embeddable, plugin-based AI API gateway."
    static func registry() -> PluginRegistry { Builtins.registry() }
}
