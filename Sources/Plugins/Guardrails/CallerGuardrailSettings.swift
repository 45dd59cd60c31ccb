import Kernel

/// Every per-caller setting of one guardrail in a manifest: authenticators carry them as
/// `keys[].guardrails.<plugin>` (api-key-auth) and `team_guardrails.<team>.<plugin>` (jwt-auth).
/// A guardrail reads them when a caller's request comes; it checks them all when it is built, so
/// that a wrong one refuses the manifest with its path instead of being found by a request.
struct CallerGuardrailSettings {
    /// Each caller's object of settings for the plugin, with its path in the manifest.
    let entries: [(path: String, settings: JSON)]

    init(of plugin: String, in manifest: Manifest) {
        var entries: [(String, JSON)] = []
        for stage in manifest.pipeline {
            for (index, key) in (stage.config["keys"]?.elements ?? []).enumerated() {
                if let settings = key["guardrails"]?[plugin], settings.isObject {
                    entries.append(("\(stage.path).keys[\(index)].guardrails.\(plugin)", settings))
                }
            }
            for (team, policy) in stage.config["team_guardrails"]?.members ?? [] {
                if let settings = policy[plugin], settings.isObject {
                    entries.append(("\(stage.path).team_guardrails.\(team).\(plugin)", settings))
                }
            }
        }
        self.entries = entries
    }

    /// A problem when `settings` holds a member not in `known`.
    static func unknownMember(in settings: JSON, known: Set<String>) -> GuardrailConfigError? {
        guard let name = settings.members.map(\.0).first(where: { !known.contains($0) }) else { return nil }
        return GuardrailConfigError(path: name, message: "not a per-caller setting; these are: \(known.sorted().joined(separator: ", "))")
    }

    /// Runs `check` on each caller's settings; a problem becomes the manifest error at its path.
    func check(_ check: (JSON) throws(GuardrailConfigError) -> Void) throws(ManifestError) {
        for (path, settings) in entries {
            do {
                try check(settings)
            } catch {
                let within = error.path.hasPrefix(".") ? String(error.path.dropFirst()) : error.path
                throw ManifestError(path: within.isEmpty ? path : "\(path).\(within)", error.message)
            }
        }
    }
}
