/// Finds `pii` placeholders (`[EMAIL_1]`, `[SECRET_12]`) in an answer, so that `restore` can put
/// the original values back.
enum PlaceholderScanner {
    static func scan(_ text: [UInt8], into matches: inout [PIIMatch]) {
        let n = text.count
        var i = 0
        while i < n {
            guard text[i] == 91 else { i += 1; continue }  // [
            var j = i + 1
            while j < n, ByteClass.isUpper(text[j]), j - i <= 7 { j += 1 }
            guard j < n, text[j] == 95, PIIDetector.byLabel(text[(i + 1)..<j]) != nil else { i += 1; continue }
            var k = j + 1
            while k < n, ByteClass.isDigit(text[k]), k - j <= 6 { k += 1 }
            guard k > j + 1, k < n, text[k] == 93 else { i += 1; continue }  // ]
            matches.append(PIIMatch(start: i, end: k + 1, detector: PIIDetector.byLabel(text[(i + 1)..<j])!, restores: true))
            i = k + 1
        }
    }
}
