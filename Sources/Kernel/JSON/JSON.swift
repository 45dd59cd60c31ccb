import CJansson

/// A JSON value backed by a jansson tree.
///
/// A gateway must forward fields it does not know untouched, so requests are kept as a dynamic
/// tree (key order preserved) rather than decoded into structs. `JSON` has value semantics:
/// reads share the tree, and the first write to a shared value copies it (copy-on-write).
public struct JSON: @unchecked Sendable {
    // Safe to share across threads: jansson's reference counts are atomic, reads do not mutate,
    // and every mutation goes through `makeUnique()` first.
    @usableFromInline var node: JSONNode

    init(owning pointer: UnsafeMutablePointer<json_t>) { node = JSONNode(owning: pointer) }
    init(borrowing pointer: UnsafeMutablePointer<json_t>) { node = JSONNode(owning: sluice_json_incref(pointer)!) }

    var pointer: UnsafeMutablePointer<json_t> { node.pointer }

    /// Gives this value a top level nobody else can see, so that it may be mutated in place.
    /// The copy is shallow: members stay shared (their reference counts say so), and a write
    /// into one goes through that member's own `makeUnique` first. Patching a request's `model`
    /// copies five members, not every message.
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&node) || node.pointer.pointee.refcount > 1 {
            node = JSONNode(owning: json_copy(node.pointer))
        }
    }
}

/// Owns one reference to a jansson value.
@usableFromInline final class JSONNode {
    let pointer: UnsafeMutablePointer<json_t>
    init(owning pointer: UnsafeMutablePointer<json_t>) { self.pointer = pointer }
    deinit { sluice_json_decref(pointer) }
}

// MARK: - Building values

extension JSON {
    public static let null = JSON(owning: json_null())

    public init(_ string: String) {
        let pointer = string.withCString { json_stringn_nocheck($0, string.utf8.count) }
        self.init(owning: pointer!)
    }
    public init(_ int: Int) { self.init(owning: json_integer(json_int_t(int))) }
    public init(_ double: Double) {
        // jansson refuses NaN and infinities; JSON has no spelling for them.
        self.init(owning: double.isFinite ? json_real(double) : json_null())
    }
    public init(_ bool: Bool) { self.init(owning: bool ? json_true() : json_false()) }

    /// An object with the given members, in order.
    public init(object members: [(String, JSON)]) {
        self.init(owning: json_object())
        for (key, value) in members { self[key] = value }
    }
    public init(array elements: [JSON]) {
        self.init(owning: json_array())
        for element in elements { json_array_append(pointer, element.pointer) }
    }
    public static func object() -> JSON { JSON(owning: json_object()) }
    public static func array() -> JSON { JSON(owning: json_array()) }
}

// Not ExpressibleByNilLiteral: `cond ? json : nil` would silently become `.null` instead of `Optional.none`.
extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
    public init(floatLiteral value: Double) { self.init(value) }
    public init(booleanLiteral value: Bool) { self.init(value) }
    public init(arrayLiteral elements: JSON...) { self.init(array: elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) { self.init(object: elements) }
}

// MARK: - Reading

extension JSON {
    public enum Kind: Sendable, Equatable { case object, array, string, integer, real, bool, null }

    public var kind: Kind {
        switch sluice_json_typeof(pointer) {
        case JSON_OBJECT: .object
        case JSON_ARRAY: .array
        case JSON_STRING: .string
        case JSON_INTEGER: .integer
        case JSON_REAL: .real
        case JSON_TRUE, JSON_FALSE: .bool
        default: .null
        }
    }

    public var isNull: Bool { kind == .null }
    public var isObject: Bool { kind == .object }
    public var isArray: Bool { kind == .array }

    public var string: String? {
        guard kind == .string, let chars = json_string_value(pointer) else { return nil }
        let buffer = UnsafeRawBufferPointer(start: chars, count: json_string_length(pointer))
        return String(decoding: buffer, as: UTF8.self)
    }
    /// The integer value; a real with no fractional part counts too (clients write `1.0`).
    public var int: Int? {
        switch kind {
        case .integer: return Int(exactly: json_integer_value(pointer))
        case .real:
            let value = json_real_value(pointer)
            return value.rounded() == value ? Int(exactly: value) : nil
        default: return nil
        }
    }
    public var double: Double? {
        switch kind {
        case .integer, .real: json_number_value(pointer)
        default: nil
        }
    }
    public var bool: Bool? {
        switch sluice_json_typeof(pointer) {
        case JSON_TRUE: true
        case JSON_FALSE: false
        default: nil
        }
    }

    /// Number of elements of an array or members of an object; 0 otherwise.
    public var count: Int {
        switch kind {
        case .array: json_array_size(pointer)
        case .object: json_object_size(pointer)
        default: 0
        }
    }

    /// The elements of an array (empty for anything else).
    public var elements: [JSON] {
        guard kind == .array else { return [] }
        return (0..<json_array_size(pointer)).map { JSON(borrowing: json_array_get(pointer, $0)) }
    }

    /// The members of an object in document order (empty for anything else).
    public var members: [(key: String, value: JSON)] {
        guard kind == .object else { return [] }
        var result: [(key: String, value: JSON)] = []
        result.reserveCapacity(json_object_size(pointer))
        var iterator = json_object_iter(pointer)
        while let current = iterator {
            let key = json_object_iter_key(current)!
            let keyBytes = UnsafeRawBufferPointer(start: key, count: json_object_iter_key_len(current))
            result.append((String(decoding: keyBytes, as: UTF8.self), JSON(borrowing: json_object_iter_value(current))))
            iterator = json_object_iter_next(pointer, current)
        }
        return result
    }

    public var keys: [String] { members.map(\.key) }

    public func contains(_ key: String) -> Bool { lookup(key) != nil }

    func lookup(_ key: String) -> UnsafeMutablePointer<json_t>? {
        guard kind == .object else { return nil }
        return key.withCString { json_object_getn(pointer, $0, key.utf8.count) }
    }

    /// The member `key` of an object; `nil` when absent or when this is not an object.
    /// Assigning `nil` removes the member; assigning a value adds or replaces it in place.
    public subscript(key: String) -> JSON? {
        get { lookup(key).map { JSON(borrowing: $0) } }
        set {
            guard kind == .object else { return }
            makeUnique()
            _ = key.withCString { chars in
                if let newValue {
                    json_object_setn_nocheck(pointer, chars, key.utf8.count, newValue.pointer)
                } else {
                    json_object_deln(pointer, chars, key.utf8.count)
                }
            }
        }
    }

    /// The element at `index` of an array; `nil` when out of range or not an array.
    public subscript(index: Int) -> JSON? {
        get {
            guard kind == .array, index >= 0, index < json_array_size(pointer) else { return nil }
            return JSON(borrowing: json_array_get(pointer, index))
        }
        set {
            guard kind == .array, index >= 0, index < json_array_size(pointer) else { return }
            makeUnique()
            json_array_set(pointer, index, (newValue ?? .null).pointer)
        }
    }

    public mutating func append(_ element: JSON) {
        guard kind == .array else { return }
        makeUnique()
        json_array_append(pointer, element.pointer)
    }
}

extension JSON: Equatable {
    public static func == (lhs: JSON, rhs: JSON) -> Bool { json_equal(lhs.pointer, rhs.pointer) == 1 }
}

extension JSON: CustomStringConvertible {
    public var description: String { String(decoding: encoded(), as: UTF8.self) }
}
