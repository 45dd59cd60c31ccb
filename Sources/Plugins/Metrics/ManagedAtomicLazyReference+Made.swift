import Atomics

extension ManagedAtomicLazyReference {
    /// The handle, made by `make` the first time it is asked for; after that, one atomic load.
    /// Two threads may both make it: the registry hands both the same handle.
    func made(_ make: () -> Instance) -> Instance {
        load() ?? storeIfNilThenLoad(make())
    }
}
