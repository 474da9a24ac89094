import Foundation

/// The base model's weights, which training never changes.
///
/// Matrices stored as F16 or BF16 stay in that precision, in their memory-mapped files,
/// and are widened to F32 only for the operation that uses them, then dropped: a 7B model
/// costs its 14.5 GB on disk (in the page cache) plus one widened matrix at a time, not
/// 29 GB of F32. F32 matrices, norms and biases are kept in memory as F32.
struct FrozenWeights: Sendable {
    private enum Storage: Sendable {
        case resident([Float])
        case mapped(SafeTensors, count: Int)
    }

    private var tensors: [String: Storage] = [:]

    /// Reads every tensor of `files`, keeping half-precision matrices mapped.
    init(files: [URL]) throws {
        for file in files {
            let safetensors = try SafeTensors(contentsOf: file)
            for (name, entry) in safetensors.entries {
                if entry.shape.count >= 2, entry.type == .bf16 || entry.type == .f16 {
                    tensors[name] = .mapped(safetensors, count: entry.elementCount)
                } else {
                    tensors[name] = .resident(try safetensors.floats(name))
                }
            }
        }
    }

    /// How many values the tensor holds, without reading it.
    func count(_ name: String) -> Int? {
        switch tensors[name] {
        case .resident(let values): values.count
        case .mapped(_, let count): count
        case nil: nil
        }
    }

    /// The tensor as F32: the values kept in memory, or a widened copy for this use.
    subscript(name: String) -> [Float]? {
        switch tensors[name] {
        case .resident(let values): return values
        case .mapped(let file, _): return try? file.floats(name)
        case nil: return nil
        }
    }

    /// Rows `rows` of a row-major matrix `width` wide, as F32, reading only those rows.
    func rows(_ name: String, _ rows: Range<Int>, width: Int) -> [Float]? {
        switch tensors[name] {
        case .resident(let values): return Array(values[(rows.lowerBound * width)..<(rows.upperBound * width)])
        case .mapped(let file, _): return try? file.floats(name, elements: (rows.lowerBound * width)..<(rows.upperBound * width))
        case nil: return nil
        }
    }

    /// Bytes of F32 values held in memory (mapped tensors are not counted).
    var residentBytes: Int {
        tensors.values.reduce(0) { total, storage in
            if case .resident(let values) = storage { return total + values.count * 4 }
            return total
        }
    }
}
