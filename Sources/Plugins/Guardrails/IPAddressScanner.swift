/// IPv4 addresses (four octets 0–255, no leading zeros, not part of a longer dotted number such
/// as a version `1.2.3.4.5`) and IPv6 addresses (eight groups, or fewer around one `::`, an IPv4
/// tail allowed, at least one decimal digit and two groups: `a::b` and `std::vector` are code).
enum IPAddressScanner {
    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        scanV4(text, into: &matches)
        scanV6(text, into: &matches)
    }

    static func scanV4(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        while i < n {
            let p = ByteClass.before(text, i)
            guard ByteClass.isDigit(text[i]), !ByteClass.isWord(p), p != 46, p != 58 || !ByteClass.isHex(ByteClass.before(text, i - 1)) else {
                i += 1
                continue
            }
            var j = i
            var octets = 0
            var valid = true
            while octets < 4 {
                let start = j
                var value = 0
                while j < n, ByteClass.isDigit(text[j]), j - start < 4 {
                    value = value * 10 + Int(text[j] - 48)
                    j += 1
                }
                let length = j - start
                if length == 0 || length > 3 || value > 255 || (length > 1 && text[start] == 48) { valid = false; break }
                octets += 1
                if octets < 4 {
                    guard j < n, text[j] == 46, ByteClass.isDigit(ByteClass.at(text, j + 1)) else { valid = false; break }
                    j += 1
                }
            }
            let after = ByteClass.at(text, j)
            if valid, !ByteClass.isWord(after), !(after == 46 && ByteClass.isDigit(ByteClass.at(text, j + 1))) {
                matches.append(PIIMatch(start: i, end: j, detector: .ip))
                i = j
            } else {
                // Skip the rest of this dotted number: no address starts inside it.
                var k = i
                while k < n, ByteClass.isDigit(text[k]) || text[k] == 46 { k += 1 }
                i = max(k, i + 1)
            }
        }
    }

    static func scanV6(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        while i < n {
            let b = text[i]
            guard ByteClass.isHex(b) || b == 58 else { i += 1; continue }
            // A maximal run of hex digits, colons and dots, not glued to a word.
            var j = i
            while j < n, ByteClass.isHex(text[j]) || text[j] == 58 || text[j] == 46 { j += 1 }
            var end = j
            while end > i, text[end - 1] == 46 { end -= 1 }
            if !ByteClass.isWord(ByteClass.before(text, i)), !ByteClass.isWord(ByteClass.at(text, j)), isV6(text[i..<end]) {
                matches.append(PIIMatch(start: i, end: end, detector: .ip))
            }
            i = j
            while i < n, ByteClass.isWord(text[i]) { i += 1 }  // the rest of a word the run was glued to
        }
    }

    static func isV6(_ run: ArraySlice<UInt8>) -> Bool {
        guard run.count >= 3, run.count <= 45, run.contains(where: ByteClass.isDigit) else { return false }
        let parts = run.split(separator: 58, omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return false }
        var groups = 0, compressed = false
        for (index, part) in parts.enumerated() {
            if part.isEmpty {
                // Empty parts only as `::`, once (two empties at either end of `::x` / `x::`).
                let atEdge = index == 0 || index == parts.count - 1
                if atEdge {
                    let neighbour = index == 0 ? parts[1] : parts[parts.count - 2]
                    guard neighbour.isEmpty else { return false }
                    continue
                }
                if compressed { return false }
                compressed = true
                continue
            }
            if index == parts.count - 1, part.contains(46) {
                var v4: [PIIMatch] = []
                scanV4(Array(part), into: &v4)
                guard v4.count == 1, v4[0].start == 0, v4[0].end == part.count else { return false }
                groups += 2
                continue
            }
            guard part.count <= 4, part.allSatisfy(ByteClass.isHex) else { return false }
            groups += 1
        }
        let edgeEmpties = (parts.first!.isEmpty ? 1 : 0) + (parts.last!.isEmpty ? 1 : 0)
        if edgeEmpties > 0 { compressed = true }
        guard groups >= 2 else { return false }
        return compressed ? groups < 8 : groups == 8
    }
}
