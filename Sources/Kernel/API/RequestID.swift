/// Request ids: kept from the client's `x-request-id` when it is sane, otherwise made here.
enum RequestID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt32
        return "req_" + hex(high, width: 16) + hex(UInt64(low), width: 8)
    }

    /// The client's id when it is 1–128 visible ASCII characters (it ends up in logs and headers).
    static func fromClient(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count),
              value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return value
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: width - digits.count) + digits
    }
}
