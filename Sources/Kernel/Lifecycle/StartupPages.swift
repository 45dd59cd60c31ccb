import Glibc

/// Takes the code that only start-up ran out of the resident set.
///
/// Start-up (argument parsing, the manifest, every plugin's set-up, the libraries' own
/// initialisation) touches more machine code than serving does, and those pages would stay mapped
/// for the life of the process: about half of an idle gateway's RSS. Code pages are clean and
/// backed by their files, so dropping them from this process (`MADV_DONTNEED`) loses nothing:
/// what serving needs faults back in from the page cache, the rest is left to the kernel to
/// reclaim. Only read-and-execute mappings of files are touched; data, which may hold private
/// changes, never is.
enum StartupPages {
    static func release() {
        guard let maps = fopen("/proc/self/maps", "r") else { return }
        defer { fclose(maps) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, maps) > 0, let line {
            // "start-end perms offset dev inode path"
            let fields = String(cString: line).split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, fields[1] == "r-xp", fields[5].drop(while: { $0 == " " }).hasPrefix("/") else { continue }  // a file, not [vdso]
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start,
                  let base = UnsafeMutableRawPointer(bitPattern: start) else { continue }
            madvise(base, Int(end - start), MADV_DONTNEED)
        }
    }
}
