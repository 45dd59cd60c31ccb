/// The threads of one step: at most one per instruction, in the order they were added.
struct SparseSet {
    var dense: [Int32]
    var sparse: [Int32]
    var count = 0

    init(capacity: Int) {
        dense = Array(repeating: 0, count: capacity)
        sparse = Array(repeating: 0, count: capacity)
    }

    var isEmpty: Bool { count == 0 }

    /// False when `value` was already there.
    @inline(__always) mutating func insert(_ value: Int32) -> Bool {
        let slot = Int(sparse[Int(value)])
        if slot < count, dense[slot] == value { return false }
        sparse[Int(value)] = Int32(count)
        dense[count] = value
        count += 1
        return true
    }

    mutating func clear() { count = 0 }
}
