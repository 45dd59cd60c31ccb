import NIOHTTP1

extension HTTPHeaders {
    /// Sets each of `fields` as `replaceOrAdd(name:value:)` sets one (any header of the same name,
    /// in any case, gives way to it, and it goes last), for the fields the gateway writes on every
    /// answer. One pass and one allocation, where `replaceOrAdd` walks the headers twice and grows
    /// their storage for each field, and checks each name byte by byte for ASCII: the gateway's own
    /// names are ASCII literals, checked in debug builds.
    public mutating func replaceOrAdd(_ fields: KeyValuePairs<String, String>) {
        var all: [(String, String)] = []
        all.reserveCapacity(count + fields.count)
        for (name, value) in self where !fields.contains(where: { HTTPSyntax.isSameName(name, $0.key) }) {
            all.append((name, value))
        }
        for (name, value) in fields {
            assert(name.utf8.allSatisfy { $0 < 0x80 }, "a header's name is ASCII")
            all.append((name, value))
        }
        self = HTTPHeaders(all)
    }
}
