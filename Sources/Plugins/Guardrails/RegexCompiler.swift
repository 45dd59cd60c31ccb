/// Turns a parse tree into `LinearRegex` instructions.
struct RegexCompiler {
    let caseInsensitive: Bool
    var program: [LinearRegex.Instruction] = []
    var sets: [ByteSet] = []

    mutating func append(_ instruction: LinearRegex.Instruction) { program.append(instruction) }

    mutating func emit(_ node: RegexNode) throws(RegexError) {
        guard program.count <= LinearRegex.maxInstructions else {
            throw RegexError(description: "the pattern is too large (over \(LinearRegex.maxInstructions) instructions)")
        }
        switch node {
        case .bytes(let set):
            let folded = caseInsensitive ? set.caseFolded : set
            let index = sets.firstIndex(of: folded) ?? sets.count
            if index == sets.count { sets.append(folded) }
            append(.init(op: .byteSet, a: Int32(index)))
        case .sequence(let items):
            for item in items { try emit(item) }
        case .assertion(let assertion):
            append(.init(op: .assert, a: assertion.rawValue))
        case .alternation(let branches):
            // split L1, next; L1: branch; jump end; next: split …
            var jumps: [Int] = []
            for (offset, branch) in branches.enumerated() {
                if offset < branches.count - 1 {
                    let split = program.count
                    append(.init(op: .split))
                    program[split].a = Int32(program.count)
                    try emit(branch)
                    jumps.append(program.count)
                    append(.init(op: .jump))
                    program[split].b = Int32(program.count)
                } else {
                    try emit(branch)
                }
            }
            for jump in jumps { program[jump].a = Int32(program.count) }
        case .repetition(let inner, let min, let max):
            for _ in 0..<min { try emit(inner) }
            if let max {
                // Each optional copy: split body, end.
                var splits: [Int] = []
                for _ in min..<max {
                    splits.append(program.count)
                    append(.init(op: .split))
                    program[splits.last!].a = Int32(program.count)
                    try emit(inner)
                }
                for split in splits { program[split].b = Int32(program.count) }
            } else {
                // loop: split body, end; body; jump loop
                let loop = program.count
                append(.init(op: .split))
                program[loop].a = Int32(program.count)
                try emit(inner)
                append(.init(op: .jump, a: Int32(loop)))
                program[loop].b = Int32(program.count)
            }
        }
    }
}
