/// A batch of spend-ledger rows the state database did not take (they stay buffered for the next
/// try). `batches: 0` announces at start that a ledger is writing, so that the failure counter
/// exists before the first failure and an alert can tell "none yet" from "no ledger".
public struct LedgerWriteFailed: Sendable {
    public var batches: Int
}
