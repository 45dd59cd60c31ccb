import Kernel

/// A public model as the router tries it, resolved when the router is built, so that a request
/// looks up nothing but its model: its own targets, then each fallback model's, every target
/// with its provider and its circuit.
struct Route: Sendable {
    let name: String
    /// The model's own targets first, then each fallback model's, in the manifest's order.
    let tiers: [Tier]
    /// Why no target of any tier can be served, when that is so because their providers are
    /// optional and not configured (the reason the first such provider of the model gives).
    let unconfigured: String?

    /// One public model's targets, picked by smooth weighted round robin.
    struct Tier: Sendable {
        /// The public model whose targets these are, and its price (a target's own price wins).
        let model: String
        let price: Price?
        let targets: [Target]
        let picker: SmoothWeightedRoundRobin

        /// The targets to try this turn, the weighted pick first, leaving out those without a
        /// provider and those whose circuit is open.
        func order() -> [Target] {
            picker.order().lazy.map { targets[$0] }.filter { $0.provider != nil && !$0.circuit.isOpen() }
        }
    }

    struct Target: Sendable {
        let target: ModelRoute.Target
        /// `nil` when the provider is optional and not configured.
        let provider: (any Provider)?
        let circuit: CircuitBreaker
    }

    /// Every public model of `models` (fallbacks name models among them), its targets resolved
    /// to `providers`, with one circuit per provider and upstream model made by `circuit`.
    static func all(_ models: [ModelRoute], providers: [String: any Provider], unavailable: [String: String],
                    circuit: (_ provider: String, _ model: String) -> CircuitBreaker) -> [String: Route] {
        var circuits: [String: CircuitBreaker] = [:]
        let tiers = Dictionary(models.map { model in
            let targets = model.targets.map { target in
                let key = "\(target.provider)/\(target.model)"
                let breaker = circuits[key] ?? circuit(target.provider, target.model)
                circuits[key] = breaker
                return Target(target: target, provider: providers[target.provider], circuit: breaker)
            }
            return (model.name, Tier(model: model.name, price: model.price, targets: targets,
                                     picker: SmoothWeightedRoundRobin(weights: model.targets.map(\.weight))))
        }, uniquingKeysWith: { $1 })
        return Dictionary(models.map { model in
            let all = [tiers[model.name]!] + model.fallbacks.compactMap { tiers[$0] }
            let servable = all.contains { $0.targets.contains { $0.provider != nil && $0.target.weight > 0 } }
            return (model.name, Route(name: model.name, tiers: all,
                                      unconfigured: servable ? nil : model.targets.lazy.compactMap { unavailable[$0.provider] }.first))
        }, uniquingKeysWith: { $1 })
    }
}
