import Foundation

/// Reads plugins.json and checks everything that can be checked without building a plugin:
/// structure, unknown keys, types, plugin names, each plugin's config schema, references
/// between models and providers, and the shape of the pipeline. It reports every error at once.
public struct ManifestReader: Sendable {
    public let registry: PluginRegistry
    public let environment: [String: String]

    public init(registry: PluginRegistry, environment: [String: String]) {
        self.registry = registry
        self.environment = environment
    }

    static let providerEntrySchema = ConfigSchema([
        ConfigField("plugin", .string, required: true, "the provider plugin that speaks this provider's API"),
        ConfigField("config", .any, default: .object(), "the plugin's settings"),
        ConfigField("optional", .boolean, default: false,
                    "true: if a secret of this provider is missing, leave it out (its models answer 503) instead of refusing the manifest"),
    ])
    static let pipelineEntrySchema = ConfigSchema([
        ConfigField("plugin", .string, required: true, "the plugin to run at this stage"),
        ConfigField("config", .any, default: .object(), "the plugin's settings"),
        ConfigField("enabled", .boolean, default: true, "false skips this entry"),
    ])
    /// The manifest's top level.
    public static let schema = ConfigSchema([
        ConfigField("$schema", .string, "the JSON Schema editors use to check this file"),
        ConfigField("database", .object(DatabaseSettings.schema),
                    "the state database (managed keys, teams, the spend ledger): SQLite embedded, or PostgreSQL shared by replicas"),
        ConfigField("server", .object(ServerSettings.schema), default: .object(), "listeners, limits and timeouts"),
        ConfigField("providers", .map(.object(providerEntrySchema)), default: .object(), "upstream providers by name"),
        ConfigField("models", .map(.object(ModelRoute.schema)), default: .object(), "public model names and where they go"),
        ConfigField("pipeline", .array(.object(pipelineEntrySchema)), required: true, "the stages a request runs through, top to bottom"),
    ] + MCPManifest.fields)

    /// Reads and checks `file`. The plugin configs in the result are checked and resolved.
    public func read(file: String) throws(ManifestErrors) -> Manifest {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ManifestErrors([ManifestError(file: file, path: "", "cannot read the file (does it exist, and may this user read it?)")])
        }
        return try read(data, file: file)
    }

    public func read(_ bytes: some ContiguousBytes, file: String) throws(ManifestErrors) -> Manifest {
        let json: JSON
        do {
            json = try JSON.parse(bytes)
        } catch {
            throw ManifestErrors([ManifestError(file: file, path: "", "not valid JSON: \(error)")])
        }
        let folder = (file as NSString).deletingLastPathComponent
        var checker = ConfigChecker(environment: environment, baseDirectory: folder.isEmpty ? "." : folder)
        guard json.isObject else {
            throw ManifestErrors([ManifestError(file: file, path: "", "expected a JSON object with \"server\", \"providers\", \"models\" and \"pipeline\"")])
        }
        let top = checker.check(json, against: Self.schema, at: "") ?? json
        let server = (try? ServerSettings.load(top["server"] ?? .object(), path: "server")) ?? ServerSettings()
        var manifest = Manifest(file: file, server: server, providers: [], models: [], pipeline: [])
        if let database = top["database"], database.isObject {
            let settings = (try? DatabaseSettings.load(database, path: "database")) ?? DatabaseSettings()
            // The URL may hold a password: the error never repeats it.
            if database["url"]?.string != nil, DatabaseURL(settings.url) == nil {
                checker.fail("database.url", "expected sqlite:PATH or postgres://user:password@host:port/database")
            }
            manifest.database = settings
        }

        for (index, entry) in (top["server"]?["admin_keys"]?.elements ?? []).enumerated() {
            let path = JSONPath.element("server.admin_keys", index)
            do { _ = try KeySettings.load(entry, path: path).named() } catch let error as NamedKeyError {
                checker.fail(error.field.map { JSONPath.member(path, $0) } ?? path, error.message)
            } catch {
                checker.fail(path, "\(error)")
            }
        }
        for address in manifest.server.listen.enumerated() where ListenAddress(address.element) == nil {
            checker.fail(JSONPath.element("server.listen", address.offset), "expected host:port such as \"127.0.0.1:8080\" or \"[::1]:8080\", got \"\(address.element)\"")
        }
        for (name, entry) in (top["providers"]?.members ?? []) {
            let path = JSONPath.member("providers", name)
            let errorCount = checker.errors.count
            guard let plugin = entry["plugin"]?.string else { continue }
            if let config = checkPlugin(plugin, config: entry["config"], kind: .provider, at: path, checker: &checker) {
                manifest.providers.append(.init(name: name, plugin: plugin, config: config, path: JSONPath.member(path, "config")))
            } else if let reason = checker.leaveOutIfOptional(entry, since: errorCount) {
                manifest.unavailableProviders[name] = reason
            }
        }
        let providerNames = (top["providers"]?.keys ?? [])
        let modelNames = top["models"]?.keys ?? []
        for (name, entry) in (top["models"]?.members ?? []) {
            let path = JSONPath.member("models", name)
            var route = ModelRoute(name: name, targets: [], fallbacks: entry["fallbacks"]?.elements.compactMap(\.string) ?? [],
                                   price: Price(entry["price"]))
            let targets = entry["targets"]?.elements ?? []
            if entry["targets"] != nil, targets.isEmpty { checker.fail(JSONPath.member(path, "targets"), "needs at least one target") }
            for (index, target) in targets.enumerated() {
                guard let provider = target["provider"]?.string, let model = target["model"]?.string else { continue }
                if !providerNames.contains(provider) {
                    checker.fail(JSONPath.member(JSONPath.element(JSONPath.member(path, "targets"), index), "provider"),
                                 "unknown provider \"\(provider)\"; \(Self.known("providers", providerNames, near: provider))")
                }
                route.targets.append(.init(provider: provider, model: model, weight: target["weight"]?.int ?? 1, price: Price(target["price"])))
            }
            if !targets.isEmpty, route.targets.allSatisfy({ $0.weight == 0 }) {
                checker.fail(JSONPath.member(path, "targets"), "at least one target needs a weight above 0")
            }
            for (index, fallback) in route.fallbacks.enumerated() where !modelNames.contains(fallback) || fallback == name {
                checker.fail(JSONPath.element(JSONPath.member(path, "fallbacks"), index), fallback == name
                             ? "a model cannot fall back to itself"
                             : "unknown model \"\(fallback)\"; \(Self.known("models", modelNames, near: fallback))")
            }
            manifest.models.append(route)
        }
        checkPipeline(top["pipeline"]?.elements ?? [], into: &manifest, checker: &checker)
        manifest.mcp = MCPManifest.read(top) { checker.fail($0, $1) }

        func located(_ error: ManifestError) -> ManifestError {
            var error = error
            error.file = file
            return error
        }
        guard checker.errors.isEmpty else { throw ManifestErrors(checker.errors.map(located)) }
        manifest.warnings = checker.warnings.map(located)
        manifest.secretReferences = checker.secretReferences
        return manifest
    }

    private func checkPipeline(_ entries: [JSON], into manifest: inout Manifest, checker: inout ConfigChecker) {
        var terminal: (name: String, path: String)?
        for (index, entry) in entries.enumerated() where entry["enabled"]?.bool != false {
            let path = JSONPath.element("pipeline", index)
            guard let plugin = entry["plugin"]?.string else { continue }
            if let terminal {
                checker.fail(JSONPath.member(path, "plugin"), "nothing may follow the terminal plugin \"\(terminal.name)\" at \(terminal.path); move \"\(plugin)\" above it")
            }
            let config = checkPlugin(plugin, config: entry["config"], kind: .middleware, at: path, checker: &checker)
            if let type = registry[plugin] as? any Middleware.Type, type.isTerminal { terminal = (plugin, path) }
            if let config { manifest.pipeline.append(.init(plugin: plugin, config: config, path: JSONPath.member(path, "config"))) }
        }
        let enabled = entries.filter { $0["enabled"]?.bool != false }.compactMap { $0["plugin"]?.string }
        if enabled.isEmpty {
            checker.fail("pipeline", "needs at least one enabled entry, ending with a terminal plugin such as \"router\"")
        } else if terminal == nil, let last = enabled.last, registry[last] != nil {
            let terminals = registry.all.compactMap { $0 as? any Middleware.Type }.filter { $0.isTerminal }.map { "\"\($0.name)\"" }
            checker.fail("pipeline", "must end with a terminal plugin that answers the request (\(terminals.joined(separator: ", "))); \"\(last)\" passes requests on")
        }
    }

    private enum Kind { case provider, middleware }

    /// Checks that `plugin` names a registered plugin of the right kind and that its config fits.
    private func checkPlugin(_ plugin: String, config: JSON?, kind: Kind, at path: String, checker: inout ConfigChecker) -> JSON? {
        let pluginPath = JSONPath.member(path, "plugin")
        let wanted = kind == .provider ? registry.providerNames : registry.middlewareNames
        guard let type = registry[plugin] else {
            let hint = Suggestions.closest(to: plugin, among: wanted).first.map { "did you mean \"\($0)\"? " } ?? ""
            checker.fail(pluginPath, "unknown plugin \"\(plugin)\"; \(hint)known \(kind == .provider ? "provider" : "pipeline") plugins: "
                         + Suggestions.ranked(plugin, among: wanted).joined(separator: ", "))
            return nil
        }
        switch kind {
        case .provider where !(type is any Provider.Type):
            checker.fail(pluginPath, "\"\(plugin)\" is a pipeline plugin, not a provider; provider plugins: \(wanted.joined(separator: ", "))")
            return nil
        case .middleware where !(type is any Middleware.Type):
            checker.fail(pluginPath, "\"\(plugin)\" is a provider plugin; declare it under \"providers\" and route to it from \"models\"")
            return nil
        default:
            break
        }
        let configPath = JSONPath.member(path, "config")
        let given = config ?? .object()
        guard given.isObject else {
            checker.fail(configPath, "expected an object")
            return nil
        }
        return checker.check(given, against: type.configSchema, at: configPath)
    }

    static func known(_ what: String, _ names: [String], near name: String) -> String {
        guard !names.isEmpty else { return "no \(what) are declared" }
        let hint = Suggestions.closest(to: name, among: names).first.map { "did you mean \"\($0)\"? " } ?? ""
        return "\(hint)known \(what): " + names.joined(separator: ", ")
    }
}
