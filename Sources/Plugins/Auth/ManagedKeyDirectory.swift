import Kernel
import Logging
import NIOConcurrencyHelpers

/// Managed keys and teams as this process knows them: a snapshot of the database, looked up
/// per request without touching it. A poll reads the database's change counter every
/// `pollInterval` and reloads the snapshot when it moved (a key created, revoked, rotated on
/// any replica), so a change is seen everywhere within one interval plus a reload; the whole
/// snapshot is also reloaded every `fullReloadInterval` whatever the counter says.
///
/// An unknown key costs one dictionary lookup of its digest: never a query.
final class ManagedKeyDirectory: Sendable {
    struct Snapshot: Sendable {
        /// Current and (during a rotation's grace period) previous digests.
        var byDigest: [[UInt8]: (key: ManagedKey, isPrevious: Bool)] = [:]
        var keys: [String: ManagedKey] = [:]
        var teams: [String: Team] = [:]
        var counter: Int64 = -1
        var loadedAt = ContinuousClock.now
    }

    let store: ManagedKeyStore
    let pollInterval: Duration
    let fullReloadInterval: Duration
    private let logger: Logger
    private let snapshot = NIOLockedValueBox(Snapshot())
    /// Where the poll runs: a job of the gateway's background work, not a task of its own.
    private let background: BackgroundWork
    private let poller = NIOLockedValueBox<BackgroundJob?>(nil)

    init(database: any StateDatabase, background: BackgroundWork, logger: Logger, pollInterval: Duration = .seconds(1),
         fullReloadInterval: Duration = .seconds(30)) {
        store = ManagedKeyStore(database: database)
        self.background = background
        self.logger = logger
        self.pollInterval = pollInterval
        self.fullReloadInterval = fullReloadInterval
    }

    var current: Snapshot { snapshot.withLockedValue { $0 } }

    func lookup(_ digest: KeyDigest) -> (key: ManagedKey, isPrevious: Bool)? {
        snapshot.withLockedValue { $0.byDigest[digest.bytes] }
    }

    func key(named name: String) -> ManagedKey? { snapshot.withLockedValue { $0.keys[name] } }
    func team(named name: String) -> Team? { snapshot.withLockedValue { $0.teams[name] } }

    /// Loads the first snapshot (a failure refuses the manifest) and starts polling.
    func start() async throws {
        try await reload()
        // Weak: a directory dropped without `stop` (a generation that failed to build) ends its poll.
        let job = background.start { [weak self] in
            while !Task.isCancelled {
                guard let interval = self?.pollInterval else { return }
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled, let self else { return }
                await self.poll()
            }
        }
        poller.withLockedValue { $0 = job }
    }

    func stop() async {
        let job = poller.withLockedValue { job in
            defer { job = nil }
            return job
        }
        await job?.stop()
    }

    private func poll() async {
        do {
            let counter = try await store.changeCounter()
            let (known, age) = snapshot.withLockedValue { ($0.counter, ContinuousClock.now - $0.loadedAt) }
            if counter != known || age >= fullReloadInterval { try await reload() }
        } catch {
            logger.warning("managed keys: cannot read the state database; serving the keys loaded before",
                           metadata: ["error": .string("\(error)")])
        }
    }

    /// Reads the counter first: a change that lands during the reload moves it again, and the
    /// next poll reloads once more.
    func reload() async throws {
        let counter = try await store.changeCounter()
        let keys = try await store.keys()
        let teams = try await store.teams()
        var fresh = Snapshot(counter: counter)
        for key in keys {
            fresh.keys[key.name] = key
            fresh.byDigest[key.digest.bytes] = (key, false)
            if let previous = key.previousDigest { fresh.byDigest[previous.bytes] = (key, true) }
        }
        for team in teams { fresh.teams[team.name] = team }
        snapshot.withLockedValue { $0 = fresh }
    }
}
