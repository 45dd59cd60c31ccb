import Foundation

/// Folders for a test's files: a SQLite state database, a manifest to reload, a CA bundle.
/// Every one lies under a single folder of the test process, removed when the process exits,
/// so a test run leaves nothing behind in the temporary directory however its tests end.
public enum TestFolder {
    /// A new, empty folder whose name starts with `prefix`.
    public static func make(_ prefix: String) -> String {
        let path = processFolder + "/" + prefix + "-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private static let processFolder: String = {
        let path = NSTemporaryDirectory() + "sluice-tests-\(getpid())"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestFolder.processFolder) }
        return path
    }()
}
