import NIOCore

/// Sits before the HTTP decoder and tells the connection handler when the first bytes of a
/// request arrive after an idle spell, so that the request timeout runs from a request's first
/// byte rather than from its complete head (a client trickling a head byte by byte is bounded
/// by it too). It looks at nothing but whether it is waiting.
final class RequestStartWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    var isWaiting = false
    var onRequestStart: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isWaiting {
            isWaiting = false
            onRequestStart?()
        }
        context.fireChannelRead(data)
    }
}
