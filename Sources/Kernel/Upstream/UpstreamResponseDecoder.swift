import NIOCore
import NIOHTTP1

/// NIO's HTTP/1.1 response decoder without its watch on the channel's writes.
///
/// NIO's decoder learns each request's method (a HEAD's answer has no body) by watching the
/// typed request parts written past it. The NIO transport writes a request as bytes it has
/// made (`UpstreamRequestHead`), so `UpstreamConnection` tells the decoder of each request
/// itself (`requestSent`), and the decoder's handler is not in the path of the writes.
struct UpstreamResponseDecoder: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart

    /// Shared with the connection, which reports the requests it sends.
    let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop)

    func requestSent(_ method: HTTPMethod) {
        decoder.write(data: .head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
    }

    func decoderAdded(context: ChannelHandlerContext) { decoder.decoderAdded(context: context) }

    func decoderRemoved(context: ChannelHandlerContext) { decoder.decoderRemoved(context: context) }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try decoder.decode(context: context, buffer: &buffer)
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }
}
