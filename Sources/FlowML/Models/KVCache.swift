/// The rotated keys and the values of every position a model has seen, per layer, so each
/// generated token costs the work of one position instead of the whole sequence.
public struct KVCache: Sendable {
    /// Per layer: [positions, key-value heads × head dimension], row-major.
    var keys: [[Float]]
    var values: [[Float]]
    /// How many positions the cache holds.
    public internal(set) var length = 0

    public init(layers: Int) {
        keys = Array(repeating: [], count: layers)
        values = Array(repeating: [], count: layers)
    }
}
