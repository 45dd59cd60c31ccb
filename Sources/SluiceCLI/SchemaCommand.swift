import ArgumentParser
import Kernel

struct SchemaCommand<Program: GatewayProgram>: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        commandName: "schema",
        abstract: "Print a JSON Schema (draft 2020-12) of plugins.json for editors and validators, or its reference in Markdown.") }

    enum Format: String, ExpressibleByArgument { case json, markdown }

    @Option(help: "json (docs/plugins.schema.json) or markdown (docs/MANIFEST.md).")
    var format: Format = .json

    func run() {
        switch format {
        case .json: print(pretty(ManifestSchema.generate(for: Program.registry())))
        case .markdown: print(ManifestReference.markdown(for: Program.registry()), terminator: "")
        }
    }

    /// Two-space indented JSON, keys in their order (stable output for diffs).
    private func pretty(_ json: JSON, indent: String = "") -> String {
        let inner = indent + "  "
        switch json.kind {
        case .object where json.count > 0:
            return "{\n" + json.members.map { "\(inner)\(JSON($0.key).description): \(pretty($0.value, indent: inner))" }.joined(separator: ",\n") + "\n\(indent)}"
        case .array where json.count > 0:
            return "[\n" + json.elements.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        default:
            return json.description
        }
    }
}
