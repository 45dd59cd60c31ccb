/// E-mail addresses: a local part, `@`, and a domain of at least two labels whose last is a
/// top-level domain of ASCII letters (local parts and labels may be internationalized). Near misses it leaves: `user@localhost`, `@decorator`,
/// `logo@2x.png` (a file name), `a@b.c`.
enum EmailScanner {
    static let fileExtensions: Set<String> = ["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "pdf", "js", "ts", "css",
                                               "html", "json", "txt", "md", "py", "swift", "rs", "go", "java", "zip", "gz", "tar"]

    @inline(__always) static func isLocal(_ b: UInt8) -> Bool {
        // . _ % + -, and the bytes of non-ASCII letters (internationalized addresses)
        ByteClass.isAlnum(b) || b == 46 || b == 95 || b == 37 || b == 43 || b == 45 || b >= 0x80
    }

    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var floor = 0  // never reach back into a find already made
        var i = 0
        while i < n {
            guard text[i] == 64 else { i += 1; continue }  // @
            var start = i
            while start > floor, isLocal(text[start - 1]), i - start < 64 { start -= 1 }
            while start < i, text[start] == 46 { start += 1 }
            var end = i + 1, labelStart = i + 1, lastDot = -1
            while end < n {
                let b = text[end]
                if ByteClass.isAlnum(b) || b == 45 || b >= 0x80 {
                    end += 1
                } else if b == 46, end > labelStart, end + 1 < n, ByteClass.isAlnum(text[end + 1]) {
                    lastDot = end
                    end += 1
                    labelStart = end
                } else {
                    break
                }
            }
            guard start < i, lastDot > i + 1, end - lastDot - 1 >= 2, end - start <= 254,
                  text[(lastDot + 1)..<end].allSatisfy(ByteClass.isAlpha),
                  !fileExtensions.contains(String(decoding: text[(lastDot + 1)..<end], as: UTF8.self).lowercased()) else {
                i += 1
                continue
            }
            matches.append(PIIMatch(start: start, end: end, detector: .email))
            floor = end
            i = end
        }
    }
}
