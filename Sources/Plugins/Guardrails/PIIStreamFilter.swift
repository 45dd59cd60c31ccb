import Kernel
import Logging

/// `pii` on a streamed answer. Each slot keeps back its last `window` bytes, so that a value the
/// model spreads over several chunks (`+1 415`, ` 555 01`, `00`) is whole before anything of it
/// goes out; a find still touching the end, or a word the cut would split (a token half sent),
/// is held from its start, up to `maxHold` bytes. A private key longer than that goes out as
/// its placeholder and the rest of the block is swallowed up to its END line.
struct PIIStreamFilter: StreamTextFilter {
    let engine: PIIEngine
    let window: Int
    let maxHold: Int
    let report: @Sendable () -> Void
    private var held: [Int: [UInt8]] = [:]
    private var swallowing: Set<Int> = []

    init(engine: PIIEngine, window: Int, maxHold: Int, report: @escaping @Sendable () -> Void) {
        self.engine = engine
        self.window = window
        self.maxHold = max(maxHold, window)
        self.report = report
    }

    mutating func release(_ text: String, slot: Int, final: Bool) throws -> String {
        var pending = held.removeValue(forKey: slot) ?? []
        pending.append(contentsOf: text.utf8)
        if swallowing.contains(slot) {
            guard let end = PrivateKeyEnd.find(in: pending, from: 0) else {
                if !final { held[slot] = Array(pending.suffix(40)) }  // an END line may be cut in two
                return ""
            }
            swallowing.remove(slot)
            pending.removeFirst(end)
        }
        let n = pending.count
        guard n > 0 else { return "" }
        var found = engine.matches(pending, stage: .response)
        var cut = final ? n : max(0, n - window)
        var swallowFrom: Int?
        if !final {
            // A word the cut would split first (a token half sent), then any find the cut still
            // splits or that may grow: a phone number is several words.
            if cut > 0, cut < n, !ByteClass.isSpace(pending[cut - 1]), !ByteClass.isSpace(pending[cut]) {
                var start = cut
                while start > 0, !ByteClass.isSpace(pending[start - 1]), n - start < maxHold { start -= 1 }
                if start == 0 || ByteClass.isSpace(pending[start - 1]) { cut = start }
            }
            for match in found where match.start < cut && (match.end > cut || match.end == n || match.open) {
                if n - match.start <= maxHold {
                    cut = match.start
                    break
                }
                if match.open {  // a key block too long to hold: its placeholder now, the rest dropped
                    swallowFrom = match.start
                    break
                }
            }
            while cut > 0, cut < n, pending[cut] & 0xC0 == 0x80 { cut -= 1 }  // never inside a character
        }
        if let swallowFrom {
            found = found.filter { $0.start <= swallowFrom }
            if let last = found.indices.last { found[last].end = n }
            let (out, _) = try engine.render(pending[...], matches: found, stage: .response)
            swallowing.insert(slot)
            held[slot] = Array(pending.suffix(40))
            return out
        }
        let (out, _) = try engine.render(pending[..<cut], matches: found.filter { $0.end <= cut }, stage: .response)
        if cut < n { held[slot] = Array(pending[cut...]) }
        return out
    }

    mutating func finish() { report() }
}
