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
                guard let haystackStart = haystack.baseAddress else { return false }
                return memmem(haystackStart, haystack.count, needleStart, needle.count) != nil
            }
        }
    }
}
