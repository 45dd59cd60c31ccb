import Foundation
import Testing
@testable import Kernel

@Suite struct StartupPagesTests {
    /// Resident kilobytes of this process's read-and-execute file mappings.
    static func residentCodeKB() throws -> Int {
        let smaps = try String(contentsOfFile: "/proc/self/smaps", encoding: .utf8)
        var total = 0, inCode = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5 {
                inCode = fields[1] == "r-xp" && fields.count == 6 && fields[5].hasPrefix("/")
            } else if inCode, fields.first == "Rss:", fields.count >= 2, let kb = Int(fields[1]) {
                total += kb
            }
        }
        return total
    }

    @Test func dropsCodePagesAndKeepsRunning() throws {
        let before = try Self.residentCodeKB()
        StartupPages.release()
        let after = try Self.residentCodeKB()
        #expect(before > 1000)
        #expect(after < before / 2, "resident code \(before) KB before, \(after) KB after")
        // What runs next faults back in: parsing and encoding still work.
        #expect(try JSON.parse(#"{"a":[1,2.5,"x"]}"#)["a"]?[2]?.string == "x")
    }
}
