import ArgumentParser
import Foundation
import Kernel

/// The container's HEALTHCHECK: asks a running gateway's `/ready`.
struct HealthcheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "Exit 0 when the gateway's GET /ready answers 200, 1 otherwise.")

    @Option(help: "The gateway's root URL (default: the manifest's first server.listen address).")
    var url: String?

    @Option(name: .shortAndLong, help: "The manifest whose listen address to ask, when --url is not given.")
    var config = "plugins.json"

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 3

    func run() async throws {
        let root = try url ?? defaultURL()
        // The gateway is asked directly, never through a proxy the environment sets for providers.
        setenv("no_proxy", "*", 1)
        setenv("NO_PROXY", "*", 1)
        let upstream = UpstreamClient()
        defer { upstream.shutdown() }
        do {
            let response = try await upstream.send(UpstreamRequest(
                method: .GET, url: root + "/ready",
                timeouts: UpstreamTimeouts(connect: .seconds(timeout), firstByte: .seconds(timeout), total: .seconds(timeout))))
            print("\(root)/ready: \(response.status) \(String(buffer: response.body).trimmingCharacters(in: .whitespacesAndNewlines))")
            if response.status != 200 { throw ExitCode(1) }
        } catch let error as UpstreamError {
            print("\(root)/ready: \(error)")
            throw ExitCode(1)
        }
    }

    /// `http://HOST:PORT` from the manifest's first listen address (0.0.0.0 and :: become loopback).
    private func defaultURL() throws -> String {
        guard let data = FileManager.default.contents(atPath: config), let json = try? JSON.parse(data),
              let first = json["server"]?["listen"]?[0]?.string, let address = ListenAddress(first) else {
            return "http://127.0.0.1:8080"
        }
        let host = switch address.host {
        case "0.0.0.0": "127.0.0.1"
        case "::": "[::1]"
        case let host where host.contains(":"): "[\(host)]"
        case let host: host
        }
        return "http://\(host):\(address.port)"
    }
}
