/// One find: a byte range of the scanned text. `open` marks a value that runs to the end of the
/// text without its closing part (a private key whose END line has not arrived): a stream must
/// hold it, or keep swallowing what follows.
struct PIIMatch: Sendable, Equatable {
    var start: Int
    var end: Int
    var detector: PIIDetector
    var open = false
    /// A placeholder of this request's, to be replaced by the value it stands for.
    var restores = false
}

enum PIIScan {
    /// Every find of `detectors` in `text`, sorted, without overlaps.
    static func matches(in text: [UInt8], detectors: [PIIDetector]) -> [PIIMatch] {
        var found: [PIIMatch] = []
        for detector in detectors { detector.scan(text, into: &found) }
        guard found.count > 1 else { return found }
        found.sort { ($0.start, $0.detector.precedence, -$0.end) < ($1.start, $1.detector.precedence, -$1.end) }
        var kept: [PIIMatch] = []
        kept.reserveCapacity(found.count)
        for match in found where kept.last.map({ match.start >= $0.end }) ?? true { kept.append(match) }
        return kept
    }
}
