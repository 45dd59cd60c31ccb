/// A regular expression matched in time linear in the text: parsed into a small program and run
/// by a Pike VM, which steps every possible match at once, one byte at a time, with at most one
/// thread per instruction. No input makes it backtrack, so `(a+)+b` against a megabyte of `a`s
/// costs one pass, as in RE2. It answers whether the pattern occurs anywhere in the text.
///
/// The syntax (RE2's common subset, over UTF-8 bytes; classes and case folding are ASCII):
/// literals and `\` escapes, `.` (any byte but a newline), classes `[a-z_]` `[^…]`, `\d \D \w
/// \W \s \S` (also inside classes), `\n \r \t`, groups `(…)` and `(?:…)`, alternation `|`,
/// `* + ?` (a trailing `?` for laziness is accepted and changes nothing here), `{m}` `{m,}`
/// `{m,n}` with counts up to 1000, anchors `^ $` (start and end of the text) and `\b \B`, and a
/// leading `(?i)` for case-insensitive matching. Backreferences and lookaround are refused: no
/// linear-time engine has them.
public struct LinearRegex: Sendable {
    enum Op: UInt8 { case byteSet, split, jump, assert, match }
    enum Assertion: Int32 { case textStart, textEnd, wordBoundary, notWordBoundary }

    struct Instruction: Sendable {
        var op: Op
        var a: Int32 = 0
        var b: Int32 = 0
    }

    let program: [Instruction]
    let sets: [ByteSet]
    /// The longest program a pattern may compile to: a bound on the work per byte of text.
    public static let maxInstructions = 20_000

    public init(_ pattern: String) throws(RegexError) {
        var parser = RegexParser(Array(pattern.utf8))
        let node = try parser.parse()
        var compiler = RegexCompiler(caseInsensitive: parser.caseInsensitive)
        try compiler.emit(node)
        compiler.append(Instruction(op: .match))
        program = compiler.program
        sets = compiler.sets
    }

    public func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { matches($0) }
    }

    public func matches(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = program.count
        var current = SparseSet(capacity: count)
        var next = SparseSet(capacity: count)
        var stack: [Int32] = []
        stack.reserveCapacity(16)
        return program.withUnsafeBufferPointer { program in
            for position in 0...text.count {
                add(0, at: position, to: &current, text: text, program: program, stack: &stack)
                if current.isEmpty { continue }
                let byte: UInt8? = position < text.count ? text[position] : nil
                for index in 0..<current.count {
                    let pc = Int(current.dense[index])
                    let instruction = program[pc]
                    switch instruction.op {
                    case .match:
                        return true
                    case .byteSet:
                        if let byte, sets[Int(instruction.a)].contains(byte) {
                            add(Int32(pc + 1), at: position + 1, to: &next, text: text, program: program, stack: &stack)
                        }
                    default:
                        break
                    }
                }
                swap(&current, &next)
                next.clear()
            }
            return false
        }
    }

    /// Adds the thread at `pc` and every thread its jumps, splits and true assertions lead to.
    @inline(__always)
    private func add(_ pc: Int32, at position: Int, to list: inout SparseSet, text: UnsafeBufferPointer<UInt8>,
                     program: UnsafeBufferPointer<Instruction>, stack: inout [Int32]) {
        stack.append(pc)
        while let pc = stack.popLast() {
            guard list.insert(pc) else { continue }
            let instruction = program[Int(pc)]
            switch instruction.op {
            case .jump: stack.append(instruction.a)
            case .split:
                stack.append(instruction.b)
                stack.append(instruction.a)
            case .assert:
                if holds(Assertion(rawValue: instruction.a)!, at: position, in: text) { stack.append(pc + 1) }
            case .byteSet, .match:
                break
            }
        }
    }

    private func holds(_ assertion: Assertion, at position: Int, in text: UnsafeBufferPointer<UInt8>) -> Bool {
        switch assertion {
        case .textStart: return position == 0
        case .textEnd: return position == text.count
        case .wordBoundary, .notWordBoundary:
            let before = position > 0 && ByteSet.word.contains(text[position - 1])
            let after = position < text.count && ByteSet.word.contains(text[position])
            return (before != after) == (assertion == .wordBoundary)
        }
    }
}
