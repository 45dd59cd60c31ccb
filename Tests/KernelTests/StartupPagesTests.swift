import Foundation
import Testing
@testable import Kernel

/// The test maps code of its own rather than measuring the whole process: the other suites run
/// in parallel in this process and fault code back in while this one measures.
@Suite struct StartupPagesTests {
    /// A private read-and-execute mapping of this test's own executable, every page touched.
    final class CodeMapping {
        let base: UnsafeMutableRawPointer
        let size: Int

        init(pages: Int) throws {
            size = pages * Int(getpagesize())
            let fd = open("/proc/self/exe", O_RDONLY)
            guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
            defer { close(fd) }
            guard let base = mmap(nil, size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
                throw POSIXError(.init(rawValue: errno) ?? .EIO)
            }
            self.base = base
            var sum: UInt8 = 0
            for offset in stride(from: 0, to: size, by: Int(getpagesize())) {
                sum &+= base.load(fromByteOffset: offset, as: UInt8.self)
            }
            _ = sum
        }

        deinit { munmap(base, size) }

        /// Writes one byte, as a debugger or uprobe setting a breakpoint does: the page becomes private.
        func patch() {
            mprotect(base, size, PROT_READ | PROT_WRITE | PROT_EXEC)
            base.storeBytes(of: base.load(as: UInt8.self), as: UInt8.self)
            mprotect(base, size, PROT_READ | PROT_EXEC)
        }

        /// This mapping's resident kilobytes, read from /proc/self/smaps with a parser of the test's own.
        func residentKB() throws -> Int {
            // Read to the end by hand: procfs reports a size of 0, and Foundation read only part of it.
            let smaps = try String(decoding: FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data(), as: UTF8.self)
            let start = String(UInt(bitPattern: base), radix: 16) + "-"
            var found = false
            for line in smaps.split(separator: "\n") {
                if !found {
                    found = line.hasPrefix(start) && line.contains(" r-xp ")
                } else if line.hasPrefix("Rss:") {
                    return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
                }
            }
            Issue.record("no mapping at \(start) in /proc/self/smaps")
            return -1
        }
    }

    @Test func dropsCleanCodeLeavesPatchedCodeAndKeepsRunning() throws {
        let clean = try CodeMapping(pages: 256)
        let patched = try CodeMapping(pages: 256)
        patched.patch()
        let fullKB = 256 * Int(getpagesize()) / 1024
        #expect(try clean.residentKB() == fullKB)
        #expect(try patched.residentKB() == fullKB)

        StartupPages.release()

        let left = try clean.residentKB()
        #expect(left == 0, "clean code is dropped: \(left) KB left")
        #expect(try patched.residentKB() == fullKB, "a mapping with a private page is left alone")
        // What runs next faults back in: parsing and encoding still work.
        #expect(try JSON.parse(#"{"a":[1,2.5,"x"]}"#)["a"]?[2]?.string == "x")
    }
}
