import Kernel
import KernelTesting
import Plugins
import Testing

/// Runs `body` with an in-process gateway of the built-ins and the scripted provider, built from
/// manifest text, and shuts the gateway down after it, whether it passed or not.
func withGateway<T>(_ manifest: String, environment: [String: String] = [:],
                    _ body: (TestGateway) async throws -> T) async throws -> T {
    var registry = Builtins.registry()
    registry.register(ScriptedProvider.self)
    let gateway = try await TestGateway(manifest: manifest, registry: registry, environment: environment)
    do {
        let result = try await body(gateway)
        await gateway.shutdown()
        return result
    } catch {
        await gateway.shutdown()
        throw error
    }
}

/// The errors a manifest is refused with (none when it is accepted).
func manifestErrors(_ manifest: String, environment: [String: String] = [:]) async -> [ManifestError] {
    do {
        try await withGateway(manifest, environment: environment) { _ in }
        return []
    } catch let errors as ManifestErrors {
        return errors.errors
    } catch let error as ManifestError {
        return [error]
    } catch {
        Issue.record("unexpected \(error)")
        return []
    }
}

/// One public model `m` served by a scripted provider `p` (upstream model `up-m`), with `pipeline`.
func scriptedManifest(pipeline: String, provider: String = #"{"reply": "hello from the script"}"#,
                      models: String = #""m": {"targets": [{"provider": "p", "model": "up-m"}]}"#) -> String {
    """
    {"providers": {"p": {"plugin": "scripted", "config": \(provider)}},
     "models": {\(models)},
     "pipeline": \(pipeline)}
    """
}

/// A chat request body: one user message, and any other members given.
func chatBody(model: String = "m", _ text: String = "hello", _ extra: [(String, JSON)] = []) -> JSON {
    JSON(object: [("model", JSON(model)), ("messages", [["role": "user", "content": JSON(text)]])] + extra)
}
