import NIOCore

/// One message of the `application/vnd.amazon.eventstream` framing: typed headers and a payload.
struct EventStreamMessage: Sendable, Equatable {
    enum HeaderValue: Sendable, Equatable {
        case bool(Bool)
        case byte(Int8)
        case int16(Int16)
        case int32(Int32)
        case int64(Int64)
        case bytes([UInt8])
        case string(String)
        case timestamp(Int64)
        case uuid([UInt8])
    }

    var headers: [(name: String, value: HeaderValue)]
    var payload: [UInt8]

    /// A string header's value (`:message-type`, `:event-type`, …).
    func string(_ name: String) -> String? {
        for header in headers where header.name == name {
            if case .string(let value) = header.value { return value }
        }
        return nil
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.payload == rhs.payload && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }
}

/// Why an event stream could not be decoded.
enum EventStreamError: Error, Equatable, CustomStringConvertible {
    case preludeChecksum
    case messageChecksum
    case tooLarge(length: Int, limit: Int)
    case malformed(String)
    case truncated

    var description: String {
        switch self {
        case .preludeChecksum: "an event stream message's prelude checksum does not match"
        case .messageChecksum: "an event stream message's checksum does not match"
        case .tooLarge(let length, let limit): "an event stream message of \(length) bytes is larger than the limit (\(limit))"
        case .malformed(let why): "a malformed event stream message: \(why)"
        case .truncated: "the event stream ended inside a message"
        }
    }
}

/// Decodes event stream messages from bytes that arrive in chunks split anywhere. Each message:
///
///     total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (over the 8 bytes before)
///     headers | payload | message CRC32 (over everything before it)
///
/// A message is held until complete, so its announced length is checked against `maxMessageBytes`
/// as soon as the prelude is in, before anything more is buffered.
struct EventStreamDecoder: Sendable {
    static let preludeBytes = 12
    /// Prelude and message checksum: a message with no headers and no payload.
    static let minimumMessageBytes = 16

    let maxMessageBytes: Int
    /// Set once the stream cannot be decoded; nothing after it is decoded.
    private(set) var failure: EventStreamError?
    private var buffer = ByteBuffer()

    init(maxMessageBytes: Int = 1 << 20) { self.maxMessageBytes = maxMessageBytes }

    /// Whether bytes of an unfinished message are held.
    var isMidMessage: Bool { buffer.readableBytes > 0 }

    /// Feeds bytes, returning the messages they complete. The messages before a broken one are
    /// returned; `failure` says why the stream stops there.
    mutating func feed(_ chunk: ByteBuffer) -> [EventStreamMessage] {
        guard failure == nil else { return [] }
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        var messages: [EventStreamMessage] = []
        do {
            while let message = try next() { messages.append(message) }
        } catch {
            failure = error as? EventStreamError ?? .malformed("\(error)")
            buffer.clear()
        }
        buffer.discardReadBytes()
        return messages
    }

    /// Fails when the stream ended inside a message.
    func finish() throws {
        if isMidMessage { throw EventStreamError.truncated }
    }

    private mutating func next() throws -> EventStreamMessage? {
        guard buffer.readableBytes >= Self.preludeBytes,
              let total = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
              let headersLength = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self),
              let preludeCRC = buffer.getInteger(at: buffer.readerIndex + 8, as: UInt32.self)
        else { return nil }
        let prelude = buffer.getBytes(at: buffer.readerIndex, length: 8)!
        guard CRC32.checksum(prelude) == preludeCRC else { throw EventStreamError.preludeChecksum }
        let length = Int(total), headerBytes = Int(headersLength)
        guard length <= maxMessageBytes else { throw EventStreamError.tooLarge(length: length, limit: maxMessageBytes) }
        guard length >= Self.minimumMessageBytes, headerBytes <= length - Self.minimumMessageBytes else {
            throw EventStreamError.malformed("lengths \(length) and \(headerBytes) do not fit")
        }
        guard buffer.readableBytes >= length else { return nil }

        let start = buffer.readerIndex
        let messageCRC = buffer.getInteger(at: start + length - 4, as: UInt32.self)!
        let computed = buffer.withUnsafeReadableBytes { CRC32.checksum($0[0..<(length - 4)]) }
        guard computed == messageCRC else { throw EventStreamError.messageChecksum }

        var headerSlice = buffer.getSlice(at: start + Self.preludeBytes, length: headerBytes)!
        let headers = try Self.headers(&headerSlice)
        let payload = buffer.getBytes(at: start + Self.preludeBytes + headerBytes, length: length - Self.minimumMessageBytes - headerBytes)!
        buffer.moveReaderIndex(forwardBy: length)
        return EventStreamMessage(headers: headers, payload: payload)
    }

    private static func headers(_ bytes: inout ByteBuffer) throws -> [(name: String, value: EventStreamMessage.HeaderValue)] {
        var headers: [(name: String, value: EventStreamMessage.HeaderValue)] = []
        while bytes.readableBytes > 0 {
            guard let nameLength = bytes.readInteger(as: UInt8.self), let name = bytes.readString(length: Int(nameLength)),
                  let type = bytes.readInteger(as: UInt8.self)
            else { throw EventStreamError.malformed("a header is cut short") }
            let value: EventStreamMessage.HeaderValue?
            switch type {
            case 0: value = .bool(true)
            case 1: value = .bool(false)
            case 2: value = bytes.readInteger(as: Int8.self).map { .byte($0) }
            case 3: value = bytes.readInteger(as: Int16.self).map { .int16($0) }
            case 4: value = bytes.readInteger(as: Int32.self).map { .int32($0) }
            case 5: value = bytes.readInteger(as: Int64.self).map { .int64($0) }
            case 6: value = bytes.readInteger(as: UInt16.self).flatMap { bytes.readBytes(length: Int($0)) }.map { .bytes($0) }
            case 7: value = bytes.readInteger(as: UInt16.self).flatMap { bytes.readString(length: Int($0)) }.map { .string($0) }
            case 8: value = bytes.readInteger(as: Int64.self).map { .timestamp($0) }
            case 9: value = bytes.readBytes(length: 16).map { .uuid($0) }
            default: throw EventStreamError.malformed("header \"\(name)\" has unknown type \(type)")
            }
            guard let value else { throw EventStreamError.malformed("header \"\(name)\" is cut short") }
            headers.append((name, value))
        }
        return headers
    }
}

/// Encodes messages in the same framing (for tests, and for fakes of a provider).
enum EventStreamEncoder {
    static func encode(headers: [(name: String, value: String)], payload: [UInt8]) -> [UInt8] {
        var headerBytes: [UInt8] = []
        for (name, value) in headers {
            headerBytes.append(UInt8(name.utf8.count))
            headerBytes += name.utf8
            headerBytes.append(7)
            headerBytes += [UInt8(value.utf8.count >> 8), UInt8(value.utf8.count & 0xFF)]
            headerBytes += value.utf8
        }
        let total = UInt32(EventStreamDecoder.minimumMessageBytes + headerBytes.count + payload.count)
        var message = bigEndian(total) + bigEndian(UInt32(headerBytes.count))
        message += bigEndian(CRC32.checksum(message))
        message += headerBytes + payload
        return message + bigEndian(CRC32.checksum(message))
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
