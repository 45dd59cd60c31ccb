// nio-floor: a minimal HTTP/1.1 reverse proxy written directly on SwiftNIO, with no gateway in it.
//
// bench/run measures it beside nginx's proxy_pass and sluice. It answers what the framework alone
// costs per proxied request on this machine (NIO's server and client, HTTP/1.1 parsing and encoding,
// one keep-alive upstream pool per event loop), so that the part of sluice's cost that is its own
// can be told from the part that any SwiftNIO proxy pays.
//
//   nio-floor --port 28110 --upstream 127.0.0.1:28101
import NIOCore
import NIOHTTP1
import NIOPosix

func usage() -> Never {
    print("usage: nio-floor --port PORT --upstream HOST:PORT")
    exit(2)
}

var port: Int?
var upstream: (host: String, port: Int)?
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { usage() }
    switch flag {
    case "--port": port = Int(value)
    case "--upstream":
        let parts = value.split(separator: ":")
        guard parts.count == 2, let upstreamPort = Int(parts[1]) else { usage() }
        upstream = (String(parts[0]), upstreamPort)
    default: usage()
    }
}
guard let port, let upstream else { usage() }

// As sluice does: one event loop per core, the process-wide group.
let group = MultiThreadedEventLoopGroup.singleton
let upstreamAddress = try SocketAddress(ipAddress: upstream.host, port: upstream.port)
let pools = UpstreamPools(group: group, address: upstreamAddress, host: "\(upstream.host):\(upstream.port)")

let server = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(DownstreamHandler(pool: pools.pool(for: channel.eventLoop)))
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .get()
print("nio-floor listening on 127.0.0.1:\(port), upstream \(upstream.host):\(upstream.port)")
try await server.closeFuture.get()
