import Testing
@testable import Kernel

/// Plugin routes found by their paths' bytes: exact before prefixes, the plugin built later for
/// the same exact route, the longest prefix, and nothing for a path no route names.
@Suite struct PluginRoutesTests {
    static func route(_ method: String, _ path: String, _ tag: String) -> PluginRoute {
        PluginRoute(method: method, path: path) { _ in GatewayResponse(status: .ok, headers: ["x-tag": tag], body: .whole(.init())) }
    }

    /// Which route answered, by its tag (a route's handler is all that tells two apart).
    static func tag(_ routes: PluginRoutes, _ method: String, _ path: String) async throws -> String? {
        guard let route = routes.route(method: method, path: path[...]) else { return nil }
        let request = GatewayRequest(operation: .other, dialect: .openAI, method: .GET, uri: path, headers: [:], body: .empty,
                                     model: "", stream: false, context: RequestContext(requestID: "r", logger: .init(label: "test")))
        return try await route.handler(request).headers.first(name: "x-tag")
    }

    @Test func exactPathsMatchWholeAndByMethod() async throws {
        let routes = PluginRoutes([Self.route("GET", "/metrics", "metrics"), Self.route("POST", "/metrics", "push")])
        #expect(try await Self.tag(routes, "GET", "/metrics") == "metrics")
        #expect(try await Self.tag(routes, "POST", "/metrics") == "push")
        #expect(try await Self.tag(routes, "PUT", "/metrics") == nil)
        #expect(try await Self.tag(routes, "GET", "/metric") == nil)
        #expect(try await Self.tag(routes, "GET", "/metrics/") == nil)
        #expect(try await Self.tag(routes, "GET", "/v1/chat/completions") == nil)
    }

    @Test func theLaterPluginWinsAnExactRoute() async throws {
        let routes = PluginRoutes([Self.route("GET", "/status", "first"), Self.route("GET", "/status", "second")])
        #expect(try await Self.tag(routes, "GET", "/status") == "second")
    }

    @Test func theLongestPrefixWinsAndExactComesFirst() async throws {
        let routes = PluginRoutes([Self.route("GET", "/admin/*", "admin"), Self.route("GET", "/admin/keys/*", "keys"),
                                   Self.route("GET", "/admin/keys/audit", "audit")])
        #expect(try await Self.tag(routes, "GET", "/admin/keys/audit") == "audit")
        #expect(try await Self.tag(routes, "GET", "/admin/keys/ci") == "keys")
        #expect(try await Self.tag(routes, "GET", "/admin/spend") == "admin")
        #expect(try await Self.tag(routes, "GET", "/admin/") == "admin")
        // `/admin/*` is what lies below `/admin/`, not `/admin` itself or `/administrator`.
        #expect(try await Self.tag(routes, "GET", "/admin") == nil)
        #expect(try await Self.tag(routes, "GET", "/administrator") == nil)
        #expect(try await Self.tag(routes, "POST", "/admin/spend") == nil)
    }

    @Test func theLaterPluginWinsAnEqualPrefix() async throws {
        let routes = PluginRoutes([Self.route("GET", "/admin/*", "first"), Self.route("GET", "/admin/*", "second")])
        #expect(try await Self.tag(routes, "GET", "/admin/x") == "second")
    }

    /// Paths are compared as bytes: a path that is only canonically equivalent is another path.
    @Test func pathsAreComparedAsBytes() async throws {
        let routes = PluginRoutes([Self.route("GET", "/caf\u{E9}", "composed"), Self.route("GET", "/files/\u{E9}/*", "files")])
        #expect(try await Self.tag(routes, "GET", "/caf\u{E9}") == "composed")
        #expect(try await Self.tag(routes, "GET", "/cafe\u{301}") == nil)
        #expect(try await Self.tag(routes, "GET", "/files/\u{E9}/a") == "files")
        #expect(try await Self.tag(routes, "GET", "/files/e\u{301}/a") == nil)
    }

    @Test func noRoutesFindNothing() async throws {
        #expect(try await Self.tag(PluginRoutes([]), "GET", "/metrics") == nil)
    }
}
