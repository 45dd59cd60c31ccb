import Foundation

/// Where a secret lives when the manifest does not hold it inline:
/// `{"env": "NAME"}`, `{"file": "/path"}` or `{"credential": "NAME"}` (systemd `LoadCredential=`).
public enum SecretReference: Sendable, Equatable {
    case env(String)
    case file(String)
    case credential(String)

    /// Recognises a reference object; `nil` for anything else.
    init?(_ json: JSON) {
        guard json.isObject, json.count == 1, let (key, value) = json.members.first, let name = value.string else { return nil }
        switch key {
        case "env": self = .env(name)
        case "file": self = .file(name)
        case "credential": self = .credential(name)
        default: return nil
        }
    }

    /// Reads the secret, or says what is missing (never the value).
    /// Relative file paths are taken from `baseDirectory` (the manifest's folder).
    func resolve(environment: [String: String], baseDirectory: String) -> Result<String, ResolutionFailure> {
        switch self {
        case .env(let name):
            guard let value = environment[name], !value.isEmpty else {
                return .failure(.init(message: "environment variable \(name) is not set (referenced as {\"env\": \"\(name)\"})"))
            }
            return .success(value)
        case .file(let path):
            let fullPath = path.hasPrefix("/") || baseDirectory.isEmpty ? path : baseDirectory + "/" + path
            return Self.read(fullPath, describedAs: "secret file \(fullPath)")
        case .credential(let name):
            guard let directory = environment["CREDENTIALS_DIRECTORY"] else {
                return .failure(.init(message: "credential \(name) needs $CREDENTIALS_DIRECTORY (set by systemd LoadCredential=)"))
            }
            return Self.read(directory + "/" + name, describedAs: "credential \(name)")
        }
    }

    struct ResolutionFailure: Error { let message: String }

    /// The same reference with a relative file path made absolute from `baseDirectory`.
    func located(in baseDirectory: String) -> SecretReference {
        guard case .file(let path) = self, !path.hasPrefix("/"), !baseDirectory.isEmpty else { return self }
        return .file(baseDirectory + "/" + path)
    }

    /// The file that holds the secret now, for references that name one (a file, a systemd
    /// credential): credentials that rotate while the gateway runs are re-read from it.
    public func path(environment: [String: String]) -> String? {
        switch self {
        case .env: nil
        case .file(let path): path
        case .credential(let name): environment["CREDENTIALS_DIRECTORY"].map { $0 + "/" + name }
        }
    }

    private static func read(_ path: String, describedAs what: String) -> Result<String, ResolutionFailure> {
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(.init(message: "\(what) cannot be read"))
        }
        let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { return .failure(.init(message: "\(what) is empty")) }
        return .success(value)
    }
}
