import Glibc

extension SSEEvent {
    /// Whether `data` holds `text`, compared byte for byte (UTF-8), for a filter that spares
    /// parsing most events. `String.contains` compares Characters, grapheme by grapheme: many
    /// times the cost, on every event of every stream.
    public func dataContains(_ text: StaticString) -> Bool {
        var data = data
        return data.withUTF8 { haystack in
            text.withUTF8Buffer { needle in
                guard let needleStart = needle.baseAddress, needle.count > 0 else { return true }
                guard let haystackStart = haystack.baseAddress, haystack.count >= needle.count else { return false }
                let start = UnsafeRawPointer(haystackStart), lastStart = haystack.count - needle.count
                var offset = 0
                // memchr to each place the first byte occurs, memcmp there (Glibc has no memmem for Swift).
                while offset <= lastStart {
                    guard let found = memchr(start + offset, Int32(needle[0]), lastStart - offset + 1) else { return false }
                    if memcmp(found, needleStart, needle.count) == 0 { return true }
                    offset = start.distance(to: UnsafeRawPointer(found)) + 1
                }
                return false
            }
        }
    }
}
