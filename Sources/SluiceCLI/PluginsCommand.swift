import ArgumentParser
import Kernel

struct PluginsCommand<Program: GatewayProgram>: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        commandName: "plugins", abstract: "List every registered plugin with its config fields.") }

    func run() {
        for type in Program.registry().all {
            let kind = switch type {
            case let middleware as any Middleware.Type: middleware.isTerminal ? "pipeline, terminal" : "pipeline"
            default: "provider"
            }
            print("\(type.name)  (\(kind))")
            if !type.summary.isEmpty { print("  \(type.summary)") }
            printFields(type.configSchema.fields, indent: "    ")
            print("")
        }
    }

    private func printFields(_ fields: [ConfigField], indent: String) {
        for field in fields {
            var line = "\(indent)\(field.name): \(field.type.shortName)"
            if field.isRequired { line += ", required" }
            if let value = field.defaultValue { line += ", default \(value)" }
            print(line + " — \(field.description)")
            switch field.type {
            case .object(let schema), .array(.object(let schema)):
                printFields(schema.fields, indent: indent + "    ")
            default:
                break
            }
        }
    }
}
