import ArgumentParser
import Kernel

/// A gateway program: `sluice` itself, or a platform team's own binary with its own plugins.
/// Conform a `@main` type and the program gets the whole `sluice` command line (`serve`,
/// `check`, `reload`, `healthcheck`, `plugins`, `schema`) working on its own registry:
///
///     import Plugins
///     import SluiceCLI
///
///     @main
///     struct AcmeGateway: GatewayProgram {
///         static let commandName = "acme-gateway"
///         static func registry() -> PluginRegistry {
///             var registry = Builtins.registry()
///             registry.register(PIIMask.self)
///             return registry
///         }
///     }
///
/// (`Examples/CustomGateway/Sources/acme-gateway` is this program, built and tested.)
public protocol GatewayProgram {
    /// The program's name in help, usage lines and logs.
    static var commandName: String { get }
    /// One line for `--help`.
    static var abstract: String { get }
    /// Every plugin type the program knows: usually `Builtins.registry()` plus its own.
    static func registry() -> PluginRegistry
}

extension GatewayProgram {
    public static var abstract: String { "An AI API gateway built on Sluice." }

    /// Parses the command line and runs the command. Swift concurrency runs on the server's
    /// event loops (`EventLoopExecutor`), so a request's task starts on its connection's thread
    /// with no hand-over to a second pool and back; in exchange, no task may block its thread
    /// (I/O that blocks goes to an `NIOThreadPool`, as the Redis client does). `@concurrent`: an
    /// entry point (`@main`) takes no caller's isolation.
    @concurrent public static func main() async {
        EventLoopExecutor.install()
        await GatewayCommand<Self>.main()
    }
}

/// The root command; each subcommand is generic over the program so it sees its registry.
struct GatewayCommand<Program: GatewayProgram>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: Program.commandName,
            abstract: Program.abstract,
            subcommands: [ServeCommand<Program>.self, CheckCommand<Program>.self, ReloadCommand<Program>.self,
                          HealthcheckCommand.self, PluginsCommand<Program>.self, SchemaCommand<Program>.self,
                          KeysCommand<Program>.self, SpendCommand<Program>.self])
    }
}
