import Foundation

enum FileManagerHelpers {
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "sluice-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
