import Kernel
import KernelTesting
import NIOHTTP1
import Testing

/// `response-store` (Sources/Plugins/ResponseStore) in memory, through an in-process gateway whose
/// scripted provider speaks Chat Completions, so every Responses request is translated. The
/// Redis store is exercised by Tests/Integration/test_responses.py against a real redis-server.
@Suite struct ResponseStoreTests {
    static let keys = #"{"plugin": "api-key-auth", "config": {"keys": [{"name": "a", "key": "key-a"}, {"name": "b", "key": "key-b"}]}}"#

    static func manifest(store: Bool = true) -> String {
        let stage = store ? #"{"plugin": "response-store"}, "# : ""
        return scriptedManifest(pipeline: #"[\#(keys), \#(stage){"plugin": "router", "config": {"retries": 0}}]"#)
    }

    /// A chat message's text, whether its content is a string or parts.
    static func text(_ content: JSON?) -> String {
        content?.string ?? (content?.elements ?? []).compactMap { $0["text"]?.string }.joined()
    }

    static func headers(_ key: String) -> HTTPHeaders { ["authorization": "Bearer key-\(key)"] }

    static func create(_ gateway: TestGateway, _ input: String, key: String = "a", previous: String? = nil,
                       extra: [(String, JSON)] = []) async throws -> TestResponse {
        var members: [(String, JSON)] = [("model", "m"), ("input", JSON(input))]
        if let previous { members.append(("previous_response_id", JSON(previous))) }
        return try await gateway.send(.POST, "/v1/responses", body: JSON(object: members + extra), headers: headers(key))
    }

    @Test func aConversationGoesOnByPreviousResponseID() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let first = try await Self.create(gateway, "one")
            #expect(first.status == .ok, "\(first.bodyText ?? "")")
            let firstID = try #require(first.body?["id"]?.string)
            let second = try await Self.create(gateway, "two", previous: firstID)
            let secondID = try #require(second.body?["id"]?.string)
            #expect(secondID != firstID)
            _ = try await Self.create(gateway, "three", previous: secondID)

            // The provider, which keeps nothing, got the whole conversation on the third turn.
            let third = try #require(gateway.calls.last).request.body.json
            let turns = (third["messages"]?.elements ?? []).map { "\($0["role"]?.string ?? ""): \(Self.text($0["content"]))" }
            #expect(turns == ["user: one", "assistant: hello from the script", "user: two", "assistant: hello from the script", "user: three"])
            #expect(third["previous_response_id"] == nil)
        }
    }

    @Test func aStoredResponseIsServedOnlyToTheKeyThatCreatedIt() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let created = try await Self.create(gateway, "one")
            let id = try #require(created.body?["id"]?.string)
            let mine = try await gateway.send(.GET, "/v1/responses/\(id)", headers: Self.headers("a"))
            #expect(mine.status == .ok)
            #expect(mine.body == created.body)
            let theirs = try await gateway.send(.GET, "/v1/responses/\(id)", headers: Self.headers("b"))
            #expect(theirs.status == .notFound)
            #expect(try await gateway.send(.DELETE, "/v1/responses/\(id)", headers: Self.headers("b")).status == .notFound)
            // Nor can another key continue it: the id is left for the provider, which cannot.
            let continued = try await Self.create(gateway, "two", key: "b", previous: id)
            #expect(continued.status == .badRequest)
            #expect(continued.error?["param"]?.string == "previous_response_id")

            let deleted = try await gateway.send(.DELETE, "/v1/responses/\(id)", headers: Self.headers("a"))
            #expect(deleted.status == .ok)
            #expect(deleted.body?["deleted"]?.bool == true)
            #expect(try await gateway.send(.GET, "/v1/responses/\(id)", headers: Self.headers("a")).status == .notFound)
        }
    }

    @Test func storeFalseKeepsNothing() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let created = try await Self.create(gateway, "one", extra: [("store", false)])
            let id = try #require(created.body?["id"]?.string)
            #expect(try await gateway.send(.GET, "/v1/responses/\(id)", headers: Self.headers("a")).status == .notFound)
        }
    }

    @Test func aStreamedResponseIsKeptBeforeItsLastEventArrives() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let streamed = try await Self.create(gateway, "one", extra: [("stream", true)])
            let completed = try #require(streamed.events?.last { $0.event == "response.completed" }?.json?["response"])
            let id = try #require(completed["id"]?.string)
            let stored = try await gateway.send(.GET, "/v1/responses/\(id)", headers: Self.headers("a"))
            #expect(stored.body == completed)
        }
    }

    @Test func inputItemsArePaged() async throws {
        try await withGateway(Self.manifest()) { gateway async throws in
            let first = try #require(try await Self.create(gateway, "one").body?["id"]?.string)
            let second = try #require(try await Self.create(gateway, "two", previous: first).body?["id"]?.string)
            let all = try await gateway.send(.GET, "/v1/responses/\(second)/input_items?order=asc", headers: Self.headers("a"))
            let items = all.body?["data"]?.elements ?? []
            #expect(items.map { $0["type"]?.string ?? "" } == ["message", "message", "message"])
            #expect(items.allSatisfy { $0["id"]?.string != nil })
            let page = try await gateway.send(.GET, "/v1/responses/\(second)/input_items?limit=1", headers: Self.headers("a"))
            #expect(page.body?["data"]?.count == 1)
            #expect(page.body?["has_more"]?.bool == true)
            #expect(page.body?["first_id"] == items.last?["id"])  // newest first by default
            let bad = try await gateway.send(.GET, "/v1/responses/\(second)/input_items?limit=0", headers: Self.headers("a"))
            #expect(bad.status == .badRequest)
            #expect(bad.error?["param"]?.string == "limit")
        }
    }

    @Test func withoutTheStoreStoredResponsesAreNotFoundAndNamed() async throws {
        try await withGateway(Self.manifest(store: false)) { gateway async throws in
            let missing = try await gateway.send(.GET, "/v1/responses/resp_123", headers: Self.headers("a"))
            #expect(missing.status == .notFound)
            #expect(missing.error?["message"]?.string?.contains("response-store") == true)
            let continued = try await Self.create(gateway, "two", previous: "resp_123")
            #expect(continued.status == .badRequest)
            #expect(continued.error?["message"]?.string?.contains("response-store") == true)
        }
    }
}
