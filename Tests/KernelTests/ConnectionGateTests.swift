import NIOCore
import Testing
@testable import Kernel

/// `ConnectionGate` on its own: which transfers to an https:// origin go into curl, and when.
@Suite struct ConnectionGateTests {
    let client = CurlTransport()

    func transfer(_ url: String = "https://api.example.com/v1/chat/completions", connect: Duration = .seconds(10)) throws -> UpstreamTransfer {
        try UpstreamTransfer(UpstreamRequest(url: url, timeouts: UpstreamTimeouts(connect: connect)), client: client, streaming: false)
    }

    @Test func anOriginIsItsSchemeHostAndPort() {
        #expect(UpstreamTransfer.httpsOrigin("https://api.example.com:8443/v1/x?y=/z") == "https://api.example.com:8443")
        #expect(UpstreamTransfer.httpsOrigin("https://api.example.com") == "https://api.example.com")
        #expect(UpstreamTransfer.httpsOrigin("http://127.0.0.1:8080/v1") == nil)
    }

    @Test func oneTransferAtATimeGoesInUntilItHasAConnection() throws {
        var gate = ConnectionGate()
        let (first, second, third) = (try transfer(), try transfer(), try transfer())
        let admitted = [gate.admit(first), gate.admit(second), gate.admit(third)]
        #expect(admitted == [true, false, false])
        #expect(gate.isHolding)
        let notOpening = gate.connected(second)  // not the one opening a connection
        let afterFirst = gate.connected(first), afterSecond = gate.connected(second), afterThird = gate.connected(third)
        #expect(notOpening == nil && afterFirst === second && afterSecond === third && afterThird == nil)
        #expect(!gate.isHolding)
        let next = gate.admit(try transfer())  // nothing is opening a connection now
        #expect(next)
    }

    @Test func plainHTTPAndOtherOriginsAreNotHeld() throws {
        var gate = ConnectionGate()
        let admitted = [gate.admit(try transfer()), gate.admit(try transfer("http://127.0.0.1:8080/v1/chat/completions")),
                        gate.admit(try transfer("https://other.example.com/v1"))]
        #expect(admitted == [true, true, true])
    }

    @Test func anHTTP1OriginLetsEverythingIn() throws {
        var gate = ConnectionGate()
        let (first, second, third) = (try transfer(), try transfer(), try transfer())
        let admitted = [gate.admit(first), gate.admit(second), gate.admit(third)]
        let released = gate.learned("https://api.example.com", multiplexes: false)
        #expect(admitted == [true, false, false])
        #expect(released.count == 2 && released[0] === second && released[1] === third)
        let later = [gate.admit(try transfer()), gate.admit(try transfer())]
        #expect(later == [true, true])
    }

    @Test func aTransferThatEndsWithoutAConnectionLetsItsOriginsHeldOnesIn() throws {
        var gate = ConnectionGate()
        let (first, second, third) = (try transfer(), try transfer(), try transfer())
        let admitted = [gate.admit(first), gate.admit(second), gate.admit(third)]
        let released = gate.ended(first)
        let afterSecond = gate.ended(second)
        #expect(admitted == [true, false, false])
        #expect(released.count == 2 && released[0] === second && released[1] === third)
        #expect(afterSecond.isEmpty)
    }

    @Test func aHeldTransferCanBeWithdrawnAndNoneIsHeldPastItsConnectTimeout() throws {
        var gate = ConnectionGate()
        let first = try transfer(), withdrawn = try transfer(), late = try transfer()
        let admitted = [gate.admit(first), gate.admit(withdrawn), gate.admit(late)]
        let removed = [gate.remove(withdrawn), gate.remove(withdrawn)]
        let now = NIODeadline.now()
        late.heldUntil = now + .seconds(1)
        let early = gate.overdue(now: now)
        let due = gate.overdue(now: now + .seconds(2))
        #expect(admitted == [true, false, false])
        #expect(removed == [true, false])
        #expect(early.isEmpty)
        #expect(due.count == 1 && due[0] === late)
        #expect(!gate.isHolding)
    }
}
