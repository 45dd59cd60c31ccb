import Glibc

/// Takes the code that only start-up ran out of the resident set.
///
/// Start-up (argument parsing, the manifest, every plugin's set-up, the libraries' own
/// initialisation) touches more machine code than serving does, and those pages would stay mapped
/// for the life of the process: about half of an idle gateway's RSS. Code pages are clean and
/// backed by their files, so dropping them from this process (`MADV_DONTNEED`) loses nothing:
/// what serving needs faults back in from the page cache, the rest is left to the kernel to
/// reclaim. Only read-and-execute mappings of files with no private page are touched (a debugger's
/// or uprobe's breakpoint is a private page); data never is.
enum StartupPages {
    static func release() {
        guard let smaps = fopen("/proc/self/smaps", "r") else { return }
        defer { fclose(smaps) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        var code: UnsafeMutableRawBufferPointer?  // the mapping being read, when it is file-backed code
        var isClean = true
        func releaseCode() {
            if let code, isClean { madvise(code.baseAddress, code.count, MADV_DONTNEED) }
        }
        while getline(&line, &capacity, smaps) > 0, let line {
            let fields = String(cString: line).split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {  // "Anonymous:   0 kB" and the like, about the mapping above
                if first == "Anonymous:", fields.count > 1, fields[1] != "0" { isClean = false }
                continue
            }
            // A mapping: "start-end perms offset dev inode path"
            releaseCode()
            code = nil
            isClean = true
            guard fields.count == 6, fields[1] == "r-xp", fields[5].drop(while: { $0 == " " }).hasPrefix("/") else { continue }  // a file, not [vdso]
            let range = first.split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
            code = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: start), count: Int(end - start))
        }
        releaseCode()
    }
}
