import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import Kernel

/// What a request's context keeps for the stages: here, usage read from the answer only when a
/// stage asks for it.
@Suite struct RequestContextTests {
    static let answer = ByteBuffer(string: #"{"id":"c","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28}}"#)

    @Test func usageInAnAnswerIsReadOnceWhenFirstAskedFor() {
        let context = RequestContext(requestID: "r", logger: Logger(label: "test"))
        let reads = NIOLockedValueBox(0)
        context.setUsage(from: Self.answer) { answer in
            reads.withLockedValue { $0 += 1 }
            return Usage(openAI: JSONView.member("usage", in: answer))
        }
        #expect(reads.withLockedValue { $0 } == 0)
        #expect(context.usage == Usage(inputTokens: 19, outputTokens: 9))
        #expect(context.usage == Usage(inputTokens: 19, outputTokens: 9))
        #expect(reads.withLockedValue { $0 } == 1)
    }

    @Test func theCostReadsTheUsageToo() {
        let context = RequestContext(requestID: "r", logger: Logger(label: "test"))
        context.recordFacts { $0.price = Price(input: 1_000_000, output: 2_000_000) }
        context.setUsage(from: Self.answer) { Usage(openAI: JSONView.member("usage", in: $0)) }
        #expect(abs((context.cost ?? 0) - 37) < 1e-9)  // 19 input and 9 output tokens at $1 and $2 a token
    }

    @Test func usageSetLaterWinsOverAnUnreadAnswer() {
        let context = RequestContext(requestID: "r", logger: Logger(label: "test"))
        context.setUsage(from: Self.answer) { _ in Issue.record("the answer was read"); return nil }
        context.usage = Usage(inputTokens: 1, outputTokens: 2)
        #expect(context.usage == Usage(inputTokens: 1, outputTokens: 2))
    }

    @Test func anAnswerWithoutUsageHasNone() {
        let context = RequestContext(requestID: "r", logger: Logger(label: "test"))
        context.usage = Usage(inputTokens: 1, outputTokens: 2)
        context.setUsage(from: ByteBuffer(string: #"{"id":"c"}"#)) { Usage(openAI: JSONView.member("usage", in: $0)) }
        #expect(context.usage == nil)
    }
}
