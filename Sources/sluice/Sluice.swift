import ArgumentParser

@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "An embeddable, plugin-based AI API gateway.",
        subcommands: [ServeCommand.self, CheckCommand.self, ReloadCommand.self, HealthcheckCommand.self, PluginsCommand.self, SchemaCommand.self]
    )
}
