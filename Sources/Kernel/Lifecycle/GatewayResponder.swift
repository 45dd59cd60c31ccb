import Atomics
import Logging
import NIOCore
import NIOHTTP1

/// The one responder the server asks, built once with the gateway: it holds what serves
/// requests now — the current generation and the front door made for it — as one snapshot that a
/// reload swaps whole, read per request with an atomic load instead of a lock (as Hummingbird's
/// responder is built once, `MiddlewareGroup.constructResponder`).
final class GatewayResponder: HTTPResponder {
    /// What serves requests at one moment.
    final class Serving: AtomicReference, Sendable {
        let generation: GatewayGeneration?
        let frontDoor: FrontDoor
        let isReady: Bool
        /// The manifest's, read here once: a request's head and each body chunk ask for it, and
        /// reading it through the manifest copies the manifest's server settings each time.
        let maxBodyBytes: Int

        init(generation: GatewayGeneration?, frontDoor: FrontDoor, isReady: Bool) {
            self.generation = generation
            self.frontDoor = frontDoor
            self.isReady = isReady
            maxBodyBytes = generation?.manifest.server.maxBodyBytes ?? ServerSettings().maxBodyBytes
        }
    }

    private let logger: Logger
    private let current: ManagedAtomic<Serving>
    private let draining = ManagedAtomic(false)

    init(logger: Logger) {
        self.logger = logger
        current = ManagedAtomic(Serving(generation: nil, frontDoor: FrontDoor(logger: logger, isDraining: { false }), isReady: false))
    }

    var generation: GatewayGeneration? { current.load(ordering: .acquiring).generation }

    /// Serves `generation` from now on (the front door for it is made here, once); returns the one it replaces.
    @discardableResult
    func serve(_ generation: GatewayGeneration) -> GatewayGeneration? {
        let old = current.load(ordering: .acquiring)
        let draining = draining
        let frontDoor = FrontDoor(logger: logger, isDraining: { draining.load(ordering: .relaxed) })
        current.store(Serving(generation: generation, frontDoor: frontDoor, isReady: old.isReady), ordering: .releasing)
        return old.generation
    }

    /// `/ready` answers 200 from now on, or (draining) 503 again.
    func setReady(_ ready: Bool) {
        let old = current.load(ordering: .acquiring)
        current.store(Serving(generation: old.generation, frontDoor: old.frontDoor, isReady: ready), ordering: .releasing)
    }

    /// Streams cancelled from now on end with a shutdown error event.
    func startDraining() {
        draining.store(true, ordering: .relaxed)
        setReady(false)
    }

    // MARK: HTTPResponder

    var maxBodyBytes: Int { current.load(ordering: .acquiring).maxBodyBytes }

    func screen(_ head: HTTPRequestHead) -> RequestScreening {
        FrontDoor.screen(head, generation: generation)
    }

    func respond(to head: HTTPRequestHead, body: ByteBuffer, screening: RequestScreening) async -> GatewayResponse {
        let serving = current.load(ordering: .acquiring)
        // A reload between the head and the body: the request is served, and screened again, by the new manifest.
        let screening = screening.generation === serving.generation ? screening : FrontDoor.screen(head, generation: serving.generation)
        return await serving.frontDoor.respond(to: head, body: body, screening: screening, isReady: serving.isReady)
    }

    func bodyTooLarge(_ head: HTTPRequestHead) -> GatewayResponse {
        current.load(ordering: .acquiring).frontDoor.bodyTooLarge(head, limit: maxBodyBytes)
    }

    func malformedRequest(_ reason: String) -> GatewayResponse {
        current.load(ordering: .acquiring).frontDoor.malformedRequest(reason)
    }

    func tooManyConnections() -> GatewayResponse {
        current.load(ordering: .acquiring).frontDoor.tooManyConnections()
    }
}
