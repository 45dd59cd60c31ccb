import Foundation
import Kernel

/// One page of `GET /v1/responses/{id}/input_items`: `limit` (1…100, default 20), `order`
/// (`desc`, the default, or `asc`) and `after` (an item id), as OpenAI pages lists.
struct InputItemsPage {
    let json: JSON

    init(_ items: [JSON], query uri: String) throws {
        var limit = 20, ascending = false
        var after: String?
        let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let value = parts.count > 1 ? (parts[1].removingPercentEncoding ?? parts[1]) : ""
            switch parts[0] {
            case "limit":
                guard let number = Int(value), (1...100).contains(number) else {
                    throw GatewayError.invalidRequest("limit must be an integer from 1 to 100", param: "limit")
                }
                limit = number
            case "order":
                guard value == "asc" || value == "desc" else { throw GatewayError.invalidRequest("order must be asc or desc", param: "order") }
                ascending = value == "asc"
            case "after":
                after = value
            default:
                break  // `include` and later additions change nothing here
            }
        }
        var ordered = ascending ? items : items.reversed()
        if let after, let index = ordered.firstIndex(where: { $0["id"]?.string == after }) {
            ordered = Array(ordered[(index + 1)...])
        }
        let page = Array(ordered.prefix(limit))
        json = ["object": "list", "data": JSON(array: page),
                "first_id": page.first?["id"] ?? .null, "last_id": page.last?["id"] ?? .null,
                "has_more": JSON(ordered.count > page.count)]
    }
}
