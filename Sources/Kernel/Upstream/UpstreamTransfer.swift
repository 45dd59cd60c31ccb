import CCurl
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// One request in flight: a curl easy handle and where its outcome goes.
/// Thread discipline: built by the caller, then touched only on the curl thread (the command queue's
/// lock orders the hand-over); `cancelRequested` is the one field other threads write.
final class UpstreamTransfer: @unchecked Sendable {
    let easy: UnsafeMutableRawPointer
    let client: CurlTransport
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    var mode = Mode.idle
    private var status = 0
    private var headers = HTTPHeaders()
    private var body = ByteBuffer()
    /// The request body, lent to curl without a copy (CURLOPT_POSTFIELDS) and given back once
    /// curl has sent it: a stream runs for minutes, and a chat body carries the whole conversation.
    private var upload: (storage: Unmanaged<AnyObject>, size: curl_off_t)?
    private(set) var headersComplete = false
    private let maxResponseBytes: Int
    /// Set when a whole answer passed `maxResponseBytes` and the transfer was aborted for it.
    private var overflowed = false
    let firstByteTimeout: Duration?
    var firstByteDeadline: NIODeadline?
    var startedAt = NIODeadline.now() {
        didSet { firstByteDeadline = firstByteTimeout.map { startedAt + TimeAmount($0) } }
    }
    /// Whether the reader wants more chunks; when not, curl is paused until it does.
    var wantsMore = true
    var isPaused = false
    let cancelRequested = NIOLockedValueBox(false)
    /// `https://host:port` for a transfer that `ConnectionGate` may hold; `nil` for `http://`.
    let origin: String?
    let connectTimeout: Duration
    /// Until when `ConnectionGate` may hold it (set by the gate when it holds it).
    var heldUntil = NIODeadline.distantFuture

    enum Mode {
        case idle
        case whole(CheckedContinuation<UpstreamResponse, any Error>)
        case streaming(CheckedContinuation<UpstreamStreamingResponse, any Error>)
        case streamingBody(UpstreamBody.Source)
        case done
    }

    /// curl's receive buffer for a streamed body (its default is 16 KiB). Events are small and
    /// a stream lives long: thousands of open streams would hold thousands of default buffers.
    /// Bursts larger than this arrive in more than one piece, which the event parser expects.
    static let streamingReceiveBufferBytes = 2048
    /// curl's buffer for sending a request body: its least, an HTTP/2 DATA frame's default size.
    /// curl's default (64 KiB) is held for as long as the transfer runs, a stream's included.
    static let uploadBufferBytes = 16384

    init(_ request: UpstreamRequest, client: CurlTransport, streaming: Bool) throws {
        guard let easy = client.makeHandle() else { throw UpstreamError.failed("could not create a curl handle") }
        self.easy = easy
        self.client = client
        firstByteTimeout = request.timeouts.firstByte
        connectTimeout = request.timeouts.connect
        origin = Self.httpsOrigin(request.url)
        maxResponseBytes = request.maxResponseBytes
        errorBuffer[0] = 0

        // `withCString` lends the String's own bytes; passing a String to a C parameter copies them.
        _ = request.url.withCString { sluice_curl_easy_setopt_string(easy, CURLOPT_URL, $0) }
        sluice_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        sluice_curl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        sluice_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        sluice_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.timeouts.connect.inMilliseconds)
        if let total = request.timeouts.total {
            sluice_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, total.inMilliseconds))
        }
        sluice_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        if request.url.utf8.starts(with: "https://".utf8) {
            // Wait for a connection being set up to say whether it multiplexes (ALPN h2) rather
            // than open one per transfer: a burst of streams to a new host rides one connection.
            // Not for http://: curl learns that HTTP/1.1 does not multiplex only from the first
            // answer, and a burst would wait for it.
            sluice_curl_easy_setopt_long(easy, CURLOPT_PIPEWAIT, 1)
        }
        if let caFile = request.caFile {
            // The bundle replaces the system store: the CA directory is cleared too, or OpenSSL
            // would still trust what it holds. curl copies both strings.
            _ = caFile.withCString { sluice_curl_easy_setopt_string(easy, CURLOPT_CAINFO, $0) }
            sluice_curl_easy_setopt_string(easy, CURLOPT_CAPATH, nil)
        }
        if streaming {
            // curl allocates the buffer when the transfer starts and frees it when it ends, and
            // curl_easy_reset puts the default back, so a recycled handle starts at 16 KiB again.
            sluice_curl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, Self.streamingReceiveBufferBytes)
        }

        switch request.method {
        case .GET:
            sluice_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case .POST:
            sluice_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
        default:
            sluice_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method.rawValue)
        }
        if let requestBody = request.body {
            sluice_curl_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, Self.uploadBufferBytes)
            let size = curl_off_t(requestBody.readableBytes)
            sluice_curl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, size)
            // The retained storage keeps the bytes where they are until `releaseUploadIfSent`.
            requestBody.withUnsafeReadableBytesWithStorageManagement { bytes, storage in
                upload = (storage.retain(), size)
                let base = bytes.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)
                sluice_curl_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: base))
            }
        }

        for (name, value) in request.headers {
            headerList = Self.appending(name: name, value: value, to: headerList)
        }
        headerList = curl_slist_append(headerList, "Expect:")  // no 100-continue round trip
        sluice_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList)

        let userdata = Unmanaged.passUnretained(self).toOpaque()
        sluice_curl_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, upstreamHeaderCallback)
        sluice_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, userdata)
        sluice_curl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, upstreamWriteCallback)
        sluice_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, userdata)
        if origin != nil { sluice_curl_easy_set_prereq(easy, upstreamConnectedCallback, userdata) }
    }

    /// `https://host[:port]` of an https:// URL.
    static func httpsOrigin(_ url: String) -> String? {
        let scheme = "https://".utf8
        guard url.utf8.starts(with: scheme) else { return nil }
        let authority = url.utf8.dropFirst(scheme.count)
        return String(url[..<(authority.firstIndex(of: UInt8(ascii: "/")) ?? url.endIndex)])
    }

    /// Adds "name: value" to a curl header list, the line built on the stack (curl copies it).
    private static func appending(name: String, value: String, to list: UnsafeMutablePointer<curl_slist>?) -> UnsafeMutablePointer<curl_slist>? {
        var name = name, value = value
        return name.withUTF8 { name in
            value.withUTF8 { value in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: name.count + value.count + 3) { line in
                    var end = line.initialize(fromContentsOf: name)
                    end = line[end...].initialize(fromContentsOf: ": ".utf8)
                    end = line[end...].initialize(fromContentsOf: value)
                    line[end] = 0
                    return line.withMemoryRebound(to: CChar.self) { curl_slist_append(list, $0.baseAddress) }
                }
            }
        }
    }

    deinit {
        client.recycle(easy)
        upload?.storage.release()
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    // MARK: curl callbacks (curl thread)

    func onHeaderLine(_ line: UnsafeRawBufferPointer) -> Int {
        // Works on bytes: this runs for every header of every response on the one curl thread.
        var end = line.count
        while end > 0, line[end - 1] == UInt8(ascii: "\n") || line[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let bytes = UnsafeRawBufferPointer(rebasing: line[..<end])
        if bytes.isEmpty {
            if status >= 200 { headersDidComplete() }
        } else if bytes.starts(with: "HTTP/".utf8) {
            if let origin { client.learned(origin, multiplexes: !bytes.starts(with: "HTTP/1".utf8)) }
            // A new response begins (after a 1xx answer: redirects are not followed).
            let digits = bytes.drop { $0 != UInt8(ascii: " ") }.dropFirst().prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            status = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            headers = HTTPHeaders()
            headers.reserveCapacity(16)  // providers send 10–20 headers: one allocation, not five regrowths
        } else if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
            let name = bytes[..<colon]
            var value = bytes[(colon + 1)...]
            while let first = value.first, isSpace(first) { value = value.dropFirst() }
            while let last = value.last, isSpace(last) { value = value.dropLast() }
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        return line.count
    }

    func onBodyBytes(_ bytes: UnsafeRawBufferPointer) -> Int {
        if !headersComplete { headersDidComplete() }
        releaseUploadIfSent()
        switch mode {
        case .whole:
            guard body.readableBytes + bytes.count <= maxResponseBytes else {
                overflowed = true
                return 0  // abort: the answer will not be buffered whole
            }
            body.writeBytes(bytes)
        case .streamingBody(let source):
            guard wantsMore else {
                isPaused = true
                return sluice_curl_writefunc_pause()  // curl keeps these bytes and hands them over again
            }
            switch source.yield(client.allocator.buffer(bytes: bytes)) {
            case .produceMore: break
            case .stopProducing: wantsMore = false
            case .dropped: return 0  // the reader is gone: abort
            }
        default:
            return 0
        }
        return bytes.count
    }

    private func headersDidComplete() {
        headersComplete = true
        releaseUploadIfSent()
        guard case .streaming(let continuation) = mode else { return }
        let (body, source) = UpstreamBody.make(for: self)
        mode = .streamingBody(source)
        continuation.resume(returning: UpstreamStreamingResponse(status: status, headers: headers, body: body))
    }

    /// Gives the request body back once curl has sent all of it and the final answer has begun.
    /// curl reads the bytes again only to send the request anew (a reused connection that died,
    /// a redirect, an auth challenge, a 417): all before an answer, or not used here.
    private func releaseUploadIfSent() {
        guard let upload else { return }
        var sent: curl_off_t = 0
        sluice_curl_easy_getinfo_off(easy, CURLINFO_SIZE_UPLOAD_T, &sent)
        guard sent >= upload.size else { return }
        upload.storage.release()
        self.upload = nil
    }

    // MARK: outcome

    /// Reports the outcome once: resumes the waiting caller or ends the body stream.
    func complete(_ error: UpstreamError?) {
        if error == nil, !headersComplete { headersDidComplete() }
        let mode = self.mode
        self.mode = .done
        switch mode {
        case .whole(let continuation):
            if let error {
                continuation.resume(throwing: error)
            } else {
                continuation.resume(returning: UpstreamResponse(status: status, headers: headers, body: body))
            }
        case .streaming(let continuation):
            continuation.resume(throwing: error ?? UpstreamError.failed("the response ended before its headers"))
        case .streamingBody(let source):
            if let error { source.finish(error) } else { source.finish() }
        case .idle, .done:
            break
        }
    }

    func error(for code: CURLcode) -> UpstreamError {
        if cancelRequested.withLockedValue({ $0 }) { return .cancelled }
        if overflowed { return .responseTooLarge(limit: maxResponseBytes) }
        let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SSL_CONNECT_ERROR,
             CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE:
            // An upstream whose certificate is not trusted is as unreachable as one that refuses.
            return .connectFailed(detail)
        case CURLE_OPERATION_TIMEDOUT:
            // Pre-transfer time is set once a connection (new or reused) is ready to send.
            var readyTime: curl_off_t = 0
            sluice_curl_easy_getinfo_off(easy, CURLINFO_PRETRANSFER_TIME_T, &readyTime)
            return .timedOut(readyTime == 0 ? .connect : (headersComplete ? .total : .firstByte))
        default:
            return .failed(detail)
        }
    }
}

extension UpstreamTransfer: UpstreamBodyFeeder {
    func readerWantsMore() { client.enqueue(.resume(self)) }
    func readerWentAway() { client.cancel(self, .cancelled) }
}

private let upstreamHeaderCallback: sluice_curl_data_callback = { pointer, size, count, userdata in
    let transfer = Unmanaged<UpstreamTransfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.onHeaderLine(UnsafeRawBufferPointer(start: pointer, count: size * count))
}

private let upstreamConnectedCallback: sluice_curl_prereq_callback = { userdata, _, _, _, _ in
    let transfer = Unmanaged<UpstreamTransfer>.fromOpaque(userdata!).takeUnretainedValue()
    transfer.client.connected(transfer)
    return 0  // CURL_PREREQFUNC_OK
}

private let upstreamWriteCallback: sluice_curl_data_callback = { pointer, size, count, userdata in
    let transfer = Unmanaged<UpstreamTransfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.onBodyBytes(UnsafeRawBufferPointer(start: pointer, count: size * count))
}
