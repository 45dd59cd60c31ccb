import NIOCore
import NIOHTTP1

/// One client request on its way through the pipeline. A value: a middleware that changes it
/// passes its own copy to `next`. State that outer middlewares must see after `next` returns
/// (caller identity, per-request storage) lives in the shared `context`.
public struct GatewayRequest: Sendable {
    public var operation: APIOperation
    /// The front door's wire format; decides the error shape.
    public var dialect: APIDialect
    public var method: HTTPMethod
    public var uri: String
    public var headers: HTTPHeaders
    public var body: RequestBody
    /// The public model asked for (a key of `models`); empty for operations without one.
    public var model: String
    /// Whether the client asked for a server-sent-event stream.
    public var stream: Bool
    /// Headers a middleware wants sent to the provider with every attempt (a tenant id, a
    /// routing hint). A name the provider sets itself (credentials, content type) is not sent.
    public var upstreamHeaders: HTTPHeaders = [:]
    public let context: RequestContext

    public init(operation: APIOperation, dialect: APIDialect, method: HTTPMethod, uri: String, headers: HTTPHeaders,
                body: RequestBody, model: String, stream: Bool, context: RequestContext) {
        self.operation = operation
        self.dialect = dialect
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.model = model
        self.stream = stream
        self.context = context
    }

    /// This request without its body: what a closure that outlives the forwarding should keep,
    /// such as a stream's `finished`, which runs minutes later. A chat body carries the whole
    /// conversation, and a closure that holds the request holds its bytes and their parsed tree.
    public var withoutBody: GatewayRequest {
        var copy = self
        copy.body = .empty
        return copy
    }

    /// `withoutBody`, without its headers too: what such a closure keeps when it reads no header.
    /// An open stream would otherwise keep the client's whole header list till it ends.
    public var withoutBodyOrHeaders: GatewayRequest {
        var copy = withoutBody
        copy.headers = [:]
        copy.upstreamHeaders = [:]
        return copy
    }

    /// The path without the query string.
    public var path: Substring { FrontDoor.path(of: uri) }
}

/// What a client asked for, independent of the path spelling.
public enum APIOperation: String, Sendable {
    case chatCompletions = "chat.completions"
    case embeddings
    /// `POST /v1/moderations`: OpenAI's moderation API, routed to a model like the others.
    case moderations
    case messages
    case responses
    /// `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.
    case storedResponse = "responses.retrieve"
    case deleteStoredResponse = "responses.delete"
    case storedResponseInputItems = "responses.input_items.list"
    case listModels = "models.list"
    /// A JSON-RPC message (or the stream, or a session's end) at `/mcp`.
    case mcp
    /// A plugin route or endpoint outside the model API.
    case other
}

/// The wire format a request arrived in.
public enum APIDialect: String, Sendable {
    case openAI = "openai"
    case anthropic
    /// MCP's JSON-RPC over Streamable HTTP (`/mcp`).
    case mcp
}
