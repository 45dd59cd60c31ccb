/// What the front door made of a request from its head alone, before the body is read: the
/// generation that will serve it and its authenticators' verdicts.
public struct RequestScreening: Sendable {
    let generation: GatewayGeneration?
    /// The verdicts of the generation's authenticators, in pipeline order, up to the first that
    /// did not identify the caller; empty outside the pipeline.
    let verdicts: [AuthVerdict]

    /// Whether the request is refused already: the first authenticator that did not identify
    /// the caller refused. Its body is then never read.
    public var isRefused: Bool {
        for verdict in verdicts {
            switch verdict {
            case .identified: continue
            case .refused: return true
            case .undecided: return false
            }
        }
        return false
    }
}
