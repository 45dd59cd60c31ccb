/// JSON-RPC 2.0 messages as MCP exchanges them.
public enum JSONRPC {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    /// The gateway's own errors (the range JSON-RPC leaves to servers).
    public static let serverUnavailable = -32001
    public static let timedOut = -32002
    public static let forbidden = -32003
    public static let refused = -32004

    public static func error(id: JSON?, code: Int, _ message: String, data: JSON? = nil) -> JSON {
        var error: [(String, JSON)] = [("code", JSON(code)), ("message", JSON(message))]
        if let data { error.append(("data", data)) }
        return JSON(object: [("jsonrpc", JSON("2.0")), ("id", id ?? JSON.null), ("error", JSON(object: error))])
    }

    public static func result(id: JSON, _ result: JSON) -> JSON {
        JSON(object: [("jsonrpc", JSON("2.0")), ("id", id), ("result", result)])
    }

    public static func request(id: JSON, method: String, params: JSON? = nil) -> JSON {
        var members: [(String, JSON)] = [("jsonrpc", JSON("2.0")), ("id", id), ("method", JSON(method))]
        if let params { members.append(("params", params)) }
        return JSON(object: members)
    }

    public static func notification(_ method: String, params: JSON? = nil) -> JSON {
        var members: [(String, JSON)] = [("jsonrpc", JSON("2.0")), ("method", JSON(method))]
        if let params { members.append(("params", params)) }
        return JSON(object: members)
    }
}

/// What one JSON-RPC message is.
enum MCPMessageKind: Equatable {
    case request(method: String)
    case notification(method: String)
    /// The client's answer to a server's request.
    case response
    case invalid

    init(_ message: JSON) {
        guard message.isObject, message["jsonrpc"]?.string == "2.0" else { self = .invalid; return }
        let id = message["id"]
        if let method = message["method"]?.string {
            if let id, id.string != nil || id.int != nil { self = .request(method: method) }
            else if id == nil { self = .notification(method: method) }
            else { self = .invalid }
        } else if id != nil, message["result"] != nil || message["error"] != nil {
            self = .response
        } else {
            self = .invalid
        }
    }
}

extension JSON {
    /// Whether this is the answer to a request (it carries `result` or `error`, no `method`).
    var isJSONRPCResponse: Bool { self["method"] == nil && (self["result"] != nil || self["error"] != nil) }
}
